//! The Kafka APIs: the handler table with its version ranges, request decoding, response
//! encoding, and one file per API. The only module that knows `kafka_protocol` messages.
//!
//! [`SUPPORTED_APIS`] is the single list of what the broker serves; ApiVersions answers
//! from it and [`handle_frame`] refuses anything outside it.

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_replica_log_dirs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub use crate::common::error_code;
pub mod alter_share_group_offsets;
pub mod delete_share_group_offsets;
pub mod delete_share_group_state;
pub mod describe_share_group_offsets;
pub mod error_counts;
pub mod fetch;
pub mod fetch_frame;
pub mod fetch_session;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod initialize_share_group_state;
pub mod join_group;
pub mod leave_group;
pub mod legacy;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod read_share_group_state;
pub mod read_share_group_state_summary;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod share_acknowledge;
pub mod share_fetch;
pub mod share_fetch_frame;
pub mod share_group_describe;
pub mod share_group_heartbeat;
pub mod sync_group;
pub mod txn_errors;
pub mod txn_offset_commit;
pub mod write_share_group_state;
pub mod write_txn_markers;

use crate::broker::Broker;
use crate::common::ErrorCode;
use crate::log::segment::FileSlice;
use crate::security::Session;
use crate::security::acl::{Operation, ResourceType};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest,
    ListTransactionsRequest, TxnOffsetCommitRequest, WriteTxnMarkersRequest,
};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterConfigsRequest, AlterPartitionReassignmentsRequest,
    AlterReplicaLogDirsRequest, AlterShareGroupOffsetsRequest, AlterUserScramCredentialsRequest, ApiKey,
    ApiVersionsRequest, ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, CreateAclsRequest,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteAclsRequest, DeleteGroupsRequest,
    DeleteRecordsRequest, DeleteShareGroupOffsetsRequest, DeleteShareGroupStateRequest, DeleteTopicsRequest,
    DescribeAclsRequest, DescribeClientQuotasRequest, DescribeClusterRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, DescribeLogDirsRequest, DescribeProducersRequest, DescribeQuorumRequest,
    DescribeShareGroupOffsetsRequest, DescribeTopicPartitionsRequest, DescribeUserScramCredentialsRequest,
    ElectLeadersRequest, FetchRequest, FindCoordinatorRequest, HeartbeatRequest,
    IncrementalAlterConfigsRequest, InitProducerIdRequest, InitializeShareGroupStateRequest,
    JoinGroupRequest, LeaveGroupRequest, ListConfigResourcesRequest, ListGroupsRequest, ListOffsetsRequest,
    ListPartitionReassignmentsRequest, MetadataRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest, ReadShareGroupStateRequest,
    ReadShareGroupStateSummaryRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest, ShareAcknowledgeRequest, ShareFetchRequest, ShareGroupDescribeRequest,
    ShareGroupHeartbeatRequest, SyncGroupRequest, WriteShareGroupStateRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::sync::Arc;

/// Every API the broker serves, with the versions it serves (the handler table). The
/// oldest versions of a few APIs (Kafka 4.0 dropped them) reach their handler through
/// [`legacy`], re-encoded at a version the handler knows.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 0, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::ShareGroupHeartbeat, 1, 1),
    (ApiKey::ShareGroupDescribe, 1, 1),
    (ApiKey::ShareFetch, 1, 1),
    (ApiKey::ShareAcknowledge, 1, 1),
    (ApiKey::InitializeShareGroupState, 0, 0),
    (ApiKey::ReadShareGroupState, 0, 0),
    (ApiKey::WriteShareGroupState, 0, 0),
    (ApiKey::DeleteShareGroupState, 0, 0),
    (ApiKey::ReadShareGroupStateSummary, 0, 0),
    (ApiKey::DescribeShareGroupOffsets, 0, 0),
    (ApiKey::AlterShareGroupOffsets, 0, 0),
    (ApiKey::DeleteShareGroupOffsets, 0, 0),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::ListConfigResources, 0, 1),
];

pub fn supported_versions(api_key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|(_, min, max)| (*min, *max))
}

/// A piece of a response frame: bytes in memory, or a range of a segment file that the
/// server sends from the page cache (or reads first, on the copying path).
#[derive(Debug, Clone)]
pub enum Chunk {
    Bytes(Bytes),
    File(FileSlice),
}

impl Chunk {
    pub fn len(&self) -> u64 {
        match self {
            Chunk::Bytes(bytes) => bytes.len() as u64,
            Chunk::File(slice) => slice.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the connection does with a request.
pub enum Outcome {
    /// Send these chunks in order (the first starts with the length prefix).
    Respond(Vec<Chunk>),
    /// Send nothing (produce with acks=0).
    NoResponse,
    /// Send this frame, if any, then close the connection: the request cannot be served.
    Close(Option<BytesMut>),
    /// The request was acted on (a produce appended); its answer comes when this
    /// completes (acks=all: once replicated). The connection reads on meanwhile and
    /// sends answers in request order.
    Deferred(std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>>),
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Respond(chunks) => write!(f, "Respond({} chunks)", chunks.len()),
            Outcome::NoResponse => write!(f, "NoResponse"),
            Outcome::Close(_) => write!(f, "Close"),
            Outcome::Deferred(_) => write!(f, "Deferred"),
        }
    }
}

/// What a handler gets besides its request.
/// What the API layer keeps across requests: one per broker, shared by its listeners.
pub struct ApiState {
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: Arc<fetch_session::FetchSessionCache>,
}

impl ApiState {
    pub fn new(broker: &Broker) -> Arc<Self> {
        let fetch_sessions = Arc::new(fetch_session::FetchSessionCache::new(
            broker.config.fetch_session_cache_slots,
        ));
        broker
            .metrics
            .register_collector(Box::new(fetch_session::SessionCollector(Arc::downgrade(
                &fetch_sessions,
            ))));
        Arc::new(ApiState { fetch_sessions })
    }
}

pub struct RequestContext<'a> {
    pub broker: &'a Arc<Broker>,
    pub api: &'a ApiState,
    pub header: &'a RequestHeader,
    pub version: i16,
    /// The client's address, as groups report it (`/127.0.0.1`).
    pub client_host: String,
    /// The listener the request came in on: Metadata and coordinator answers give
    /// brokers' endpoints on the same listener.
    pub listener: &'a str,
    /// Who sent it (`User:name`).
    pub principal: String,
    /// Set by a handler whose client went over a quota: the connection is muted this
    /// long after the answer (KIP-219).
    pub throttle_ms: std::sync::atomic::AtomicI64,
}

impl RequestContext<'_> {
    /// The client id the request names (empty if none).
    pub fn client_id(&self) -> &str {
        self.header.client_id.as_deref().unwrap_or("")
    }

    /// KIP-599 `controller_mutation_rate`, before a topic's partitions are created or
    /// deleted: `Err(throttle ms)` when the client is already over its quota and the
    /// request is `strict` (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+:
    /// that topic gets THROTTLING_QUOTA_EXCEEDED); otherwise the mutations are recorded
    /// (an older request is throttled, never refused).
    pub fn admit_mutations(&self, partitions: i64, strict: bool) -> Result<(), i64> {
        use crate::broker::quotas::QuotaKind;
        if strict {
            let throttle =
                self.broker
                    .quota_exceeded(QuotaKind::ControllerMutation, &self.principal, self.client_id());
            if throttle > 0 {
                self.throttle_ms
                    .fetch_max(throttle, std::sync::atomic::Ordering::Relaxed);
                return Err(throttle);
            }
        }
        self.record_quota(QuotaKind::ControllerMutation, partitions.max(0) as f64);
        Ok(())
    }

    /// The throttle time a handler put on this request so far, for its answer.
    pub fn throttle_time_ms(&self) -> i32 {
        self.throttle_ms
            .load(std::sync::atomic::Ordering::Relaxed)
            .min(i32::MAX as i64) as i32
    }

    /// Records `value` against the client's quota of `kind`; the throttle time (ms) to
    /// put in the answer, after which the connection stays muted.
    pub fn record_quota(&self, kind: crate::broker::quotas::QuotaKind, value: f64) -> i32 {
        let throttle = self
            .broker
            .record_quota(kind, &self.principal, self.client_id(), value);
        self.throttle_ms
            .fetch_max(throttle, std::sync::atomic::Ordering::Relaxed);
        throttle.min(i32::MAX as i64) as i32
    }

    /// The client's IP, as ACL host filters name it.
    pub fn host(&self) -> &str {
        self.client_host.trim_start_matches('/')
    }

    /// May this request's principal perform `operation` on the resource?
    pub fn allowed(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        self.broker
            .authorize(&self.principal, self.host(), operation, resource_type, name)
    }

    /// May it perform `operation` on the cluster?
    pub fn allowed_on_cluster(&self, operation: Operation) -> bool {
        self.allowed(operation, ResourceType::Cluster, crate::security::acl::CLUSTER)
    }
}

fn encode_frame<R: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> anyhow::Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut buf, api_key.response_header_version(version))?;
    body.encode(&mut buf, version)?;
    let length = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf)
}

/// The outcome that answers with `body`, or closes the connection if it cannot be
/// encoded.
pub(crate) fn respond<R: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &R) -> Outcome {
    match encode_frame(api_key, version, correlation_id, body) {
        Ok(frame) => Outcome::Respond(vec![Chunk::Bytes(frame.freeze())]),
        Err(error) => {
            tracing::error!(?api_key, version, %error, "could not encode response; closing connection");
            Outcome::Close(None)
        }
    }
}

/// Decodes a request of type `Req`, runs the handler, encodes its response.
async fn serve<Req, Resp, F, Fut>(
    metrics: &crate::metrics::Metrics,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    mut body: Bytes,
    handler: F,
) -> Outcome
where
    Req: Decodable,
    Resp: Encodable + error_counts::ErrorCodes,
    F: FnOnce(Req) -> Fut,
    Fut: std::future::Future<Output = Option<Resp>>,
{
    let request = match Req::decode(&mut body, version) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(?api_key, version, %error, "malformed request; closing connection");
            return Outcome::Close(None);
        }
    };
    match handler(request).await {
        None => Outcome::NoResponse,
        Some(response) => {
            if let Some(api) = api_name(api_key as i16) {
                metrics.response_errors(api, |emit| response.error_codes(emit));
            }
            match encode_frame(api_key, version, correlation_id, &response) {
                Ok(frame) => Outcome::Respond(vec![Chunk::Bytes(frame.freeze())]),
                Err(error) => {
                    tracing::error!(?api_key, version, %error, "could not encode response; closing connection");
                    Outcome::Close(None)
                }
            }
        }
    }
}

/// The name of a served API (its Kafka name, as metrics label it); None for a key
/// this broker does not serve.
pub fn api_name(raw_key: i16) -> Option<&'static str> {
    static NAMES: std::sync::OnceLock<Vec<(i16, &'static str)>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        SUPPORTED_APIS
            .iter()
            .map(|(key, _, _)| (*key as i16, &*Box::leak(format!("{key:?}").into_boxed_str())))
            .collect()
    });
    names
        .iter()
        .find(|(key, _)| *key == raw_key)
        .map(|(_, name)| *name)
}

/// Logs once per client id, API and version that a request was refused for its version
/// (an old client fails on the closed connection; the operator learns why here).
fn log_refused_version(frame: &[u8], raw_key: i16, version: i16) {
    static SEEN: std::sync::OnceLock<parking_lot::Mutex<std::collections::HashSet<(String, i16, i16)>>> =
        std::sync::OnceLock::new();
    // Every request header from v1 on carries the client id after the correlation id.
    let client_id = frame
        .get(8..10)
        .map(|len| i16::from_be_bytes([len[0], len[1]]))
        .filter(|len| *len >= 0)
        .and_then(|len| frame.get(10..10 + len as usize))
        .map(|id| String::from_utf8_lossy(id).into_owned())
        .unwrap_or_default();
    let api =
        ApiKey::try_from(raw_key).map_or_else(|_| format!("unknown API {raw_key}"), |key| format!("{key:?}"));
    let supported = ApiKey::try_from(raw_key)
        .ok()
        .and_then(supported_versions)
        .map_or_else(|| "none".to_string(), |(min, max)| format!("{min}-{max}"));
    let mut seen = SEEN.get_or_init(Default::default).lock();
    if seen.len() < 1000 && seen.insert((client_id.clone(), raw_key, version)) {
        tracing::warn!(
            client_id,
            api,
            version,
            supported,
            "refused a request at a version this broker does not serve; closing the connection"
        );
    }
}

/// Serves a request at a version the codec no longer knows through [`legacy`]: the body
/// is re-encoded at `bridge`, served, and the answer re-encoded at `version`.
async fn serve_legacy(
    broker: &Arc<Broker>,
    api: &ApiState,
    frame: Bytes,
    session: &mut Session,
    api_key: ApiKey,
    version: i16,
    bridge: i16,
) -> Outcome {
    // Header v1: key, version, correlation id, then the nullable client id.
    let header_len = match frame.get(8..10).map(|len| i16::from_be_bytes([len[0], len[1]])) {
        Some(len) if len >= 0 => 10 + len as usize,
        Some(_) => 10,
        None => return Outcome::Close(None),
    };
    if frame.len() < header_len {
        return Outcome::Close(None);
    }
    let body = match legacy::request_up(api_key, version, bridge, frame.slice(header_len..)) {
        Ok(body) => body,
        Err(error) => {
            tracing::debug!(?api_key, version, %error, "malformed old-version request; closing connection");
            return Outcome::Close(None);
        }
    };
    let mut bridged = BytesMut::with_capacity(header_len + body.len());
    bridged.put_i16(api_key as i16);
    bridged.put_i16(bridge);
    bridged.put_slice(&frame[4..header_len]);
    bridged.put_slice(&body);
    match Box::pin(handle_frame(broker, api, bridged.freeze(), session)).await {
        Outcome::Respond(chunks) => {
            let mut answer = BytesMut::new();
            for chunk in chunks {
                match chunk {
                    Chunk::Bytes(bytes) => answer.put_slice(&bytes),
                    Chunk::File(_) => return Outcome::Close(None),
                }
            }
            match legacy::response_down(api_key, version, bridge, answer.freeze()) {
                Ok(frame) => Outcome::Respond(vec![Chunk::Bytes(frame)]),
                Err(error) => {
                    tracing::error!(?api_key, version, %error, "could not encode an old-version response; closing connection");
                    Outcome::Close(None)
                }
            }
        }
        other => other,
    }
}

/// Serves one request frame (without its length prefix) for a connection's session.
pub async fn handle_frame(
    broker: &Arc<Broker>,
    api: &ApiState,
    frame: Bytes,
    session: &mut Session,
) -> Outcome {
    if session.sasl.raw_tokens && session.sasl.exchanging() {
        // After a v0 SaslHandshake the client sends bare SASL tokens.
        return sasl_authenticate::handle_raw(broker, session, frame);
    }
    if frame.len() < 8 {
        return Outcome::Close(None);
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(raw_key).ok();
    let supported = api_key
        .and_then(supported_versions)
        .is_some_and(|(min, max)| (min..=max).contains(&version));
    if !supported {
        return refuse_version(&frame, api_key, raw_key, version, correlation_id);
    }
    let Some(api_key) = api_key else {
        return Outcome::Close(None);
    };
    if let Some(bridge) = legacy::bridge_version(api_key, version) {
        return serve_legacy(broker, api, frame, session, api_key, version, bridge).await;
    }
    let sasl_api = matches!(api_key, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
    if !sasl_api && api_key != ApiKey::ApiVersions && !session.authenticated(std::time::Instant::now()) {
        // Kafka closes a connection that sends anything else before (or, once its
        // session expired, instead of) authenticating.
        tracing::info!(peer = %session.peer, ?api_key, "request without a live SASL session; closing connection");
        return Outcome::Close(None);
    }
    let mut body = frame;
    let header = match RequestHeader::decode(&mut body, api_key.request_header_version(version)) {
        Ok(header) => header,
        Err(_) => return Outcome::Close(None),
    };
    match api_key {
        ApiKey::SaslHandshake => {
            return match SaslHandshakeRequest::decode(&mut body, version) {
                Ok(request) => {
                    let response = sasl_handshake::handle(session, request, version);
                    respond(api_key, version, correlation_id, &response)
                }
                Err(_) => Outcome::Close(None),
            };
        }
        ApiKey::SaslAuthenticate => {
            return match SaslAuthenticateRequest::decode(&mut body, version) {
                Ok(request) => sasl_authenticate::handle(broker, session, request, version, correlation_id),
                Err(_) => Outcome::Close(None),
            };
        }
        _ => {}
    }
    let ctx = RequestContext {
        broker,
        api,
        header: &header,
        version,
        client_host: format!("/{}", session.peer.ip()),
        listener: &session.listener.name,
        principal: session.principal(),
        throttle_ms: std::sync::atomic::AtomicI64::new(0),
    };
    let started = std::time::Instant::now();
    let outcome = dispatch(&ctx, api_key, version, correlation_id, body).await;
    // request_percentage: the time spent handling the request, as a percentage of one
    // thread over the quota windows (a long poll's wait is not work: fetches, whose
    // handling is mostly their wait, are left out).
    if !matches!(api_key, ApiKey::Fetch | ApiKey::ShareFetch) {
        let percent_seconds = started.elapsed().as_secs_f64() * 100.0;
        ctx.record_quota(crate::broker::quotas::QuotaKind::Request, percent_seconds);
    }
    let throttle_ms = ctx.throttle_ms.load(std::sync::atomic::Ordering::Relaxed);
    if throttle_ms > 0 {
        session.muted_until =
            Some(std::time::Instant::now() + std::time::Duration::from_millis(throttle_ms as u64));
    }
    outcome
}

/// An unsupported version: Kafka answers an unknown ApiVersions version with a v0
/// response carrying UNSUPPORTED_VERSION and the supported ranges, so the client can
/// retry; any other request gets a v0-style error body before the connection closes.
fn refuse_version(
    frame: &Bytes,
    api_key: Option<ApiKey>,
    raw_key: i16,
    version: i16,
    correlation_id: i32,
) -> Outcome {
    if api_key == Some(ApiKey::ApiVersions) {
        let response = api_versions::unsupported_version_response();
        return match encode_frame(ApiKey::ApiVersions, 0, correlation_id, &response) {
            Ok(frame) => Outcome::Respond(vec![Chunk::Bytes(frame.freeze())]),
            Err(_) => Outcome::Close(None),
        };
    }
    log_refused_version(frame, raw_key, version);
    let mut buf = BytesMut::with_capacity(10);
    buf.put_i32(6);
    buf.put_i32(correlation_id);
    buf.put_i16(error_code::UNSUPPORTED_VERSION);
    Outcome::Close(Some(buf))
}

/// The handler table: decodes the body of an authenticated request of a supported
/// version, calls its API's handler and encodes the answer.
async fn dispatch(
    ctx: &RequestContext<'_>,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    mut body: Bytes,
) -> Outcome {
    macro_rules! route {
        ($request:ty, |$r:ident| $body:expr) => {
            serve(
                &ctx.broker.metrics,
                api_key,
                version,
                correlation_id,
                body,
                |$r: $request| async move { $body },
            )
            .await
        };
    }
    match api_key {
        ApiKey::ApiVersions => route!(ApiVersionsRequest, |r| Some(api_versions::handle(ctx, r))),
        ApiKey::Metadata => route!(MetadataRequest, |r| Some(metadata::handle(ctx, r).await)),
        ApiKey::Produce => match ProduceRequest::decode(&mut body, version) {
            Ok(request) => produce::handle(ctx, request, correlation_id).await,
            Err(error) => {
                tracing::debug!(version, %error, "malformed produce request; closing connection");
                Outcome::Close(None)
            }
        },
        ApiKey::Fetch => {
            let request = match FetchRequest::decode(&mut body, version) {
                Ok(request) => request,
                Err(_) => return Outcome::Close(None),
            };
            let reply = fetch::handle(ctx, request).await;
            ctx.broker.metrics.response_errors("Fetch", |emit| {
                error_counts::ErrorCodes::error_codes(&reply.response, emit)
            });
            match fetch_frame::encode(version, correlation_id, reply) {
                Ok(chunks) => Outcome::Respond(chunks),
                Err(error) => {
                    tracing::error!(%error, "could not frame a fetch response; closing connection");
                    Outcome::Close(None)
                }
            }
        }
        ApiKey::ListOffsets => route!(ListOffsetsRequest, |r| Some(list_offsets::handle(ctx, r))),
        ApiKey::CreateTopics => route!(CreateTopicsRequest, |r| Some(create_topics::handle(ctx, r).await)),
        ApiKey::DeleteTopics => route!(DeleteTopicsRequest, |r| Some(delete_topics::handle(ctx, r).await)),
        ApiKey::CreatePartitions => {
            route!(CreatePartitionsRequest, |r| Some(
                create_partitions::handle(ctx, r).await
            ))
        }
        ApiKey::DescribeConfigs => route!(DescribeConfigsRequest, |r| Some(describe_configs::handle(ctx, r))),
        ApiKey::AlterConfigs => route!(AlterConfigsRequest, |r| Some(alter_configs::handle(ctx, r).await)),
        ApiKey::IncrementalAlterConfigs => route!(IncrementalAlterConfigsRequest, |r| Some(
            incremental_alter_configs::handle(ctx, r).await
        )),
        ApiKey::InitProducerId => route!(InitProducerIdRequest, |r| Some(
            init_producer_id::handle(ctx, r).await
        )),
        ApiKey::FindCoordinator => route!(FindCoordinatorRequest, |r| Some(
            find_coordinator::handle(ctx, r).await
        )),
        ApiKey::JoinGroup => route!(JoinGroupRequest, |r| Some(join_group::handle(ctx, r).await)),
        ApiKey::SyncGroup => route!(SyncGroupRequest, |r| Some(sync_group::handle(ctx, r).await)),
        ApiKey::Heartbeat => route!(HeartbeatRequest, |r| Some(heartbeat::handle(ctx, r).await)),
        ApiKey::LeaveGroup => route!(LeaveGroupRequest, |r| Some(leave_group::handle(ctx, r).await)),
        ApiKey::OffsetCommit => route!(OffsetCommitRequest, |r| Some(offset_commit::handle(ctx, r).await)),
        ApiKey::OffsetFetch => route!(OffsetFetchRequest, |r| Some(offset_fetch::handle(ctx, r).await)),
        ApiKey::ListGroups => route!(ListGroupsRequest, |r| Some(list_groups::handle(ctx, r))),
        ApiKey::DescribeGroups => route!(DescribeGroupsRequest, |r| Some(describe_groups::handle(ctx, r))),
        ApiKey::ConsumerGroupHeartbeat => route!(ConsumerGroupHeartbeatRequest, |r| Some(
            consumer_group_heartbeat::handle(ctx, r).await
        )),
        ApiKey::ConsumerGroupDescribe => route!(ConsumerGroupDescribeRequest, |r| Some(
            consumer_group_describe::handle(ctx, r).await
        )),
        ApiKey::ShareGroupHeartbeat => route!(ShareGroupHeartbeatRequest, |r| Some(
            share_group_heartbeat::handle(ctx, r).await
        )),
        ApiKey::ShareGroupDescribe => route!(ShareGroupDescribeRequest, |r| Some(
            share_group_describe::handle(ctx, r).await
        )),
        ApiKey::ShareFetch => {
            let Ok(request) = ShareFetchRequest::decode(&mut body, version) else {
                return Outcome::Close(None);
            };
            let reply = share_fetch::handle(ctx, request).await;
            ctx.broker.metrics.response_errors("ShareFetch", |emit| {
                error_counts::ErrorCodes::error_codes(&reply.response, emit)
            });
            match share_fetch_frame::encode(version, correlation_id, reply) {
                Ok(chunks) => Outcome::Respond(chunks),
                Err(error) => {
                    tracing::error!(%error, "could not frame a share fetch response; closing connection");
                    Outcome::Close(None)
                }
            }
        }
        ApiKey::ShareAcknowledge => route!(ShareAcknowledgeRequest, |r| Some(
            share_acknowledge::handle(ctx, r).await
        )),
        ApiKey::InitializeShareGroupState => route!(InitializeShareGroupStateRequest, |r| Some(
            initialize_share_group_state::handle(ctx, r).await
        )),
        ApiKey::ReadShareGroupState => route!(ReadShareGroupStateRequest, |r| Some(
            read_share_group_state::handle(ctx, r).await
        )),
        ApiKey::WriteShareGroupState => route!(WriteShareGroupStateRequest, |r| Some(
            write_share_group_state::handle(ctx, r).await
        )),
        ApiKey::DeleteShareGroupState => route!(DeleteShareGroupStateRequest, |r| Some(
            delete_share_group_state::handle(ctx, r).await
        )),
        ApiKey::ReadShareGroupStateSummary => route!(ReadShareGroupStateSummaryRequest, |r| Some(
            read_share_group_state_summary::handle(ctx, r).await
        )),
        ApiKey::DescribeShareGroupOffsets => route!(DescribeShareGroupOffsetsRequest, |r| Some(
            describe_share_group_offsets::handle(ctx, r).await
        )),
        ApiKey::AlterShareGroupOffsets => route!(AlterShareGroupOffsetsRequest, |r| Some(
            alter_share_group_offsets::handle(ctx, r).await
        )),
        ApiKey::DeleteShareGroupOffsets => route!(DeleteShareGroupOffsetsRequest, |r| Some(
            delete_share_group_offsets::handle(ctx, r).await
        )),
        ApiKey::DeleteGroups => route!(DeleteGroupsRequest, |r| Some(delete_groups::handle(ctx, r).await)),
        ApiKey::OffsetForLeaderEpoch => route!(OffsetForLeaderEpochRequest, |r| Some(
            offset_for_leader_epoch::handle(ctx, r)
        )),
        ApiKey::DescribeQuorum => route!(DescribeQuorumRequest, |r| Some(
            describe_quorum::handle(ctx, r).await
        )),
        ApiKey::OffsetDelete => route!(OffsetDeleteRequest, |r| Some(offset_delete::handle(ctx, r).await)),
        ApiKey::DeleteRecords => route!(DeleteRecordsRequest, |r| Some(
            delete_records::handle(ctx, r).await
        )),
        ApiKey::DescribeUserScramCredentials => route!(DescribeUserScramCredentialsRequest, |r| Some(
            describe_user_scram_credentials::handle(ctx, r)
        )),
        ApiKey::DescribeAcls => route!(DescribeAclsRequest, |r| Some(describe_acls::handle(ctx, r))),
        ApiKey::DescribeLogDirs => route!(DescribeLogDirsRequest, |r| Some(describe_log_dirs::handle(
            ctx, r
        ))),
        ApiKey::DescribeProducers => route!(DescribeProducersRequest, |r| Some(describe_producers::handle(
            ctx, r
        ))),
        ApiKey::DescribeTopicPartitions => route!(DescribeTopicPartitionsRequest, |r| Some(
            describe_topic_partitions::handle(ctx, r)
        )),
        ApiKey::AlterReplicaLogDirs => route!(AlterReplicaLogDirsRequest, |r| Some(
            alter_replica_log_dirs::handle(ctx, r).await
        )),
        ApiKey::ElectLeaders => route!(ElectLeadersRequest, |r| Some(elect_leaders::handle(ctx, r).await)),
        ApiKey::AlterPartitionReassignments => route!(AlterPartitionReassignmentsRequest, |r| Some(
            alter_partition_reassignments::handle(ctx, r).await
        )),
        ApiKey::ListPartitionReassignments => route!(ListPartitionReassignmentsRequest, |r| Some(
            list_partition_reassignments::handle(ctx, r).await
        )),
        ApiKey::DescribeCluster => route!(DescribeClusterRequest, |r| Some(describe_cluster::handle(ctx, r))),
        ApiKey::AddPartitionsToTxn => route!(AddPartitionsToTxnRequest, |r| Some(
            add_partitions_to_txn::handle(ctx, r).await
        )),
        ApiKey::AddOffsetsToTxn => route!(AddOffsetsToTxnRequest, |r| Some(
            add_offsets_to_txn::handle(ctx, r).await
        )),
        ApiKey::EndTxn => route!(EndTxnRequest, |r| Some(end_txn::handle(ctx, r).await)),
        ApiKey::WriteTxnMarkers => route!(WriteTxnMarkersRequest, |r| Some(
            write_txn_markers::handle(ctx, r).await
        )),
        ApiKey::TxnOffsetCommit => route!(TxnOffsetCommitRequest, |r| Some(
            txn_offset_commit::handle(ctx, r).await
        )),
        ApiKey::DescribeTransactions => route!(DescribeTransactionsRequest, |r| Some(
            describe_transactions::handle(ctx, r).await
        )),
        ApiKey::ListTransactions => route!(ListTransactionsRequest, |r| Some(list_transactions::handle(
            ctx, r
        ))),
        ApiKey::ListConfigResources => route!(ListConfigResourcesRequest, |r| Some(
            list_config_resources::handle(ctx, r)
        )),
        ApiKey::CreateAcls => route!(CreateAclsRequest, |r| Some(create_acls::handle(ctx, r).await)),
        ApiKey::DeleteAcls => route!(DeleteAclsRequest, |r| Some(delete_acls::handle(ctx, r).await)),
        ApiKey::DescribeClientQuotas => route!(DescribeClientQuotasRequest, |r| Some(
            describe_client_quotas::handle(ctx, r)
        )),
        ApiKey::AlterClientQuotas => route!(AlterClientQuotasRequest, |r| Some(
            alter_client_quotas::handle(ctx, r).await
        )),
        ApiKey::AlterUserScramCredentials => route!(AlterUserScramCredentialsRequest, |r| Some(
            alter_user_scram_credentials::handle(ctx, r).await
        )),
        _ => Outcome::Close(None),
    }
}

/// KIP-951: the live leader of a partition as this broker's image knows it (leader id,
/// leader epoch, its client endpoint), for answers that tell a client where to go.
pub fn current_leader(
    image: &crate::cluster::image::MetadataImage,
    topic: &str,
    index: i32,
    listener: &str,
) -> Option<(i32, i32, crate::cluster::image::Endpoint)> {
    let partition = image.topic(topic)?.partition(index)?;
    let broker = image
        .brokers
        .get(&partition.leader)
        .filter(|broker| !broker.fenced)?;
    Some((
        partition.leader,
        partition.leader_epoch,
        broker.endpoint(listener)?.clone(),
    ))
}

/// Whether an error code sends a client to look for the partition's leader.
pub fn is_leader_error(code: i16) -> bool {
    code == error_code::NOT_LEADER_OR_FOLLOWER
        || code == kafka_protocol::ResponseError::FencedLeaderEpoch.code()
}

/// The name of a topic found by id (newer request versions) or by name; the error is
/// the Kafka code. Only the name is copied out of the image, not the topic's partitions.
pub fn lookup_topic_name(
    broker: &Broker,
    name: &str,
    topic_id: uuid::Uuid,
    by_id: bool,
) -> Result<String, ErrorCode> {
    let image = broker.image();
    let topic = if by_id {
        image.topic_by_id(topic_id).ok_or(ErrorCode::UNKNOWN_TOPIC_ID)
    } else {
        image.topic(name).ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
    };
    topic.map(|topic| topic.name.clone())
}

/// Sends a metadata write (ACLs, SCRAM credentials) to the active controller and waits
/// until this broker's image has it, so the client's next request sees the change.
pub async fn commit_metadata(
    broker: &Broker,
    request: crate::controller::rpc::ControllerRequest,
) -> Result<(), crate::controller::rpc::ControllerError> {
    use crate::controller::rpc::{ControllerError, ControllerReply};
    match broker.controller_request(request, DEFAULT_ADMIN_TIMEOUT).await? {
        ControllerReply::Committed { offset } => {
            broker.wait_for_offset(offset, DEFAULT_ADMIN_TIMEOUT).await;
            Ok(())
        }
        other => Err(ControllerError::Unavailable(format!(
            "unexpected controller answer {other:?}"
        ))),
    }
}

/// The controller wait for admin requests that carry no timeout of their own.
pub const DEFAULT_ADMIN_TIMEOUT: std::time::Duration = crate::broker::DEFAULT_CONTROLLER_TIMEOUT;

/// At most this many new partitions per CreateTopics or CreatePartitions request, as
/// Kafka's controller allows: more is POLICY_VIOLATION for every topic in the request,
/// so no single request can make the broker open files and map indexes without bound.
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// Kafka's message for a request over [`MAX_PARTITIONS_PER_REQUEST`].
pub const EXCESSIVE_PARTITIONS: &str = "Excessively large number of partitions per request.";

/// How long a broker waits for the controller on behalf of a request that allows
/// `timeout_ms` (admin requests carry one; 0 or less means the broker's default).
pub fn controller_timeout(timeout_ms: i32) -> std::time::Duration {
    if timeout_ms <= 0 {
        crate::broker::DEFAULT_CONTROLLER_TIMEOUT
    } else {
        std::time::Duration::from_millis(timeout_ms.clamp(100, 120_000) as u64)
    }
}

pub use crate::replication::manager::check_leader_epoch;
