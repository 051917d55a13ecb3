//! The messages nodes exchange on the CONTROLLER listener, their framing, and a small
//! connection pool for sending them.
//!
//! Framing: a big-endian u32 length, then that many bytes of JSON. A request is
//! answered on the same connection; a connection carries one request at a time, so the
//! pool opens another connection rather than queue a heartbeat behind a slow write.
//! Raft's own RPCs (append, vote, install snapshot) travel as openraft's serde types;
//! brokers talk to the active controller with [`ControllerRequest`]s. Frames over
//! [`MAX_FRAME`] or that do not parse close the connection. On an SSL CONTROLLER
//! listener the same frames travel inside TLS.

use super::types::{NodeId, TypeConfig};
use crate::cluster::commands::{CommandError, NewTopic};
use crate::cluster::image::Endpoint;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame accepted (snapshots travel in chunks well below this).
pub const MAX_FRAME: usize = 64 << 20;

/// What a broker (or an operator's tool, through a broker) asks the active controller.
fn no_broker_epoch() -> i64 {
    -1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerRequest {
    RegisterBroker {
        broker_id: i32,
        incarnation_id: uuid::Uuid,
        endpoints: Vec<Endpoint>,
        rack: Option<String>,
        /// The broker epoch recorded at the broker's last clean shutdown, or -1
        /// (Kafka's `PreviousBrokerEpoch`, KIP-966).
        #[serde(default = "no_broker_epoch")]
        previous_broker_epoch: i64,
        /// The partition replicas it can host.
        #[serde(default)]
        capacity: Option<crate::cluster::capacity::Capacity>,
    },
    BrokerHeartbeat {
        broker_id: i32,
        broker_epoch: i64,
        /// The metadata offset the broker has applied.
        metadata_offset: i64,
    },
    CreateTopic {
        topic: NewTopic,
        validate_only: bool,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    },
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    SetGroupConfigs {
        group_id: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    /// A BROKER resource's dynamic configs: a broker id, or "" for the cluster default.
    SetBrokerConfigs {
        broker: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    /// Client quota changes per entity (None removes a key).
    AlterClientQuotas {
        changes: Vec<(crate::cluster::quotas::QuotaEntity, BTreeMap<String, Option<f64>>)>,
        validate_only: bool,
    },
    AllocateProducerIds {
        broker_id: i32,
        broker_epoch: i64,
    },
    DescribeQuorum,
    /// Adds ACLs (CreateAcls); one already present is not added twice.
    CreateAcls {
        acls: Vec<crate::security::acl::AclBinding>,
    },
    /// Removes ACLs by id (DeleteAcls, after the broker matched its filters).
    DeleteAcls {
        ids: Vec<uuid::Uuid>,
    },
    /// Sets and removes users' SCRAM credentials (AlterUserScramCredentials).
    AlterScramCredentials {
        changes: Vec<crate::cluster::commands::ScramChange>,
    },
    /// A broker about to stop: move its leaderships and take it out of the ISRs now
    /// (Kafka's controlled shutdown), rather than after its session times out.
    ControlledShutdown {
        broker_id: i32,
        broker_epoch: i64,
    },
    /// A partition leader's ISR changes, for any number of partitions at once, as
    /// Kafka's AlterPartition carries them: one metadata batch for all.
    AlterPartition {
        broker_id: i32,
        changes: Vec<IsrChange>,
    },
    /// Leader elections an operator asked for (ElectLeaders); None: every partition.
    ElectLeaders {
        election: crate::cluster::election::ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    },
    /// Partition reassignments (AlterPartitionReassignments): each partition's target
    /// replicas, None to cancel.
    AlterPartitionReassignments {
        changes: Vec<(String, i32, Option<Vec<i32>>)>,
    },
    /// A broker without a controller of its own follows the metadata through this: the
    /// image once it is past `after_offset`, waiting up to `max_wait_ms` for that.
    FetchMetadata {
        after_offset: i64,
        max_wait_ms: u64,
    },
}

/// One partition's ISR change in an AlterPartition request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrChange {
    pub topic_id: uuid::Uuid,
    pub partition: i32,
    /// The leader epoch and partition epoch the leader proposes from.
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

/// One voter's or observer's replication state, as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaProgress {
    pub node_id: i32,
    /// -1 when the leader has no information about this replica.
    pub log_end_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumInfo {
    pub leader_id: i32,
    /// The Raft term, which is KRaft's leader epoch.
    pub leader_epoch: i32,
    /// One past the last committed metadata offset.
    pub high_watermark: i64,
    pub voters: Vec<ReplicaProgress>,
    pub observers: Vec<ReplicaProgress>,
    /// Each voter's CONTROLLER endpoint (`host`, `port`).
    pub voter_endpoints: Vec<(i32, String, u16)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerReply {
    /// The write (if there was one) is committed at this metadata offset.
    Committed {
        offset: i64,
    },
    TopicCreated {
        topic_id: uuid::Uuid,
        offset: i64,
    },
    Registered {
        broker_epoch: i64,
    },
    Heartbeat {
        fenced: bool,
    },
    ProducerIds {
        start: i64,
        len: i64,
    },
    Quorum(QuorumInfo),
    /// Each partition's election outcome, committed at `offset`.
    Elections {
        outcomes: Vec<(String, i32, crate::cluster::election::ElectionOutcome)>,
        offset: i64,
    },
    /// Each ISR change's outcome, in request order; the accepted ones are committed
    /// at `offset`.
    IsrChanges {
        results: Vec<Result<(), crate::cluster::commands::CommandError>>,
        offset: i64,
    },
    /// Each partition's reassignment outcome, committed at `offset`.
    Reassignments {
        outcomes: Vec<(
            String,
            i32,
            Result<(), crate::cluster::reassignment::ReassignError>,
        )>,
        offset: i64,
    },
    /// The committed image, or None if nothing newer came within the wait.
    Metadata(Option<Box<crate::cluster::image::MetadataImage>>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ControllerError {
    #[error("this node is not the active controller (leader: {leader:?})")]
    NotController { leader: Option<NodeId> },
    #[error("the metadata quorum cannot commit: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Command(#[from] CommandError),
}

pub type ControllerResponse = Result<ControllerReply, ControllerError>;

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    Controller(ControllerRequest),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Controller(ControllerResponse),
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("connection to {address} failed: {source}")]
    Io {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("no answer from {address} within {timeout:?}")]
    Timeout { address: SocketAddr, timeout: Duration },
    #[error("bad frame from {address}: {reason}")]
    Protocol { address: SocketAddr, reason: String },
}

/// A connection on the CONTROLLER listener: plain TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Writes one frame.
pub async fn write_frame<S: AsyncWrite + Unpin, T: Serialize>(
    stream: &mut S,
    message: &T,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "frame of {} bytes is too large",
            body.len()
        )));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await?;
    // TLS buffers records: push the frame out now.
    stream.flush().await
}

/// Reads one frame; None at a clean end of stream.
pub async fn read_frame<S: AsyncRead + Unpin, T: serde::de::DeserializeOwned>(
    stream: &mut S,
) -> std::io::Result<Option<T>> {
    let size = match stream.read_u32().await {
        Ok(size) => size as usize,
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    };
    if size > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {size} bytes is over {MAX_FRAME}"),
        ));
    }
    let mut body = Vec::new();
    stream.take(size as u64).read_to_end(&mut body).await?;
    if body.len() < size {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))
}

/// How this node opens connections to CONTROLLER listeners: from its own address, and
/// over TLS (trusting the truststore, presenting the keystore) when the CONTROLLER
/// listener is SSL.
#[derive(Clone, Default)]
pub struct Dialer {
    pub local_ip: Option<IpAddr>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Connections to one node's CONTROLLER listener. Outgoing connections are bound to
/// this node's own address first, so that traffic between nodes comes from their
/// listener addresses (network partitions are made by address).
pub struct RpcPool {
    address: SocketAddr,
    /// The name the node's certificate must carry (the host of its voter address).
    host: String,
    dialer: Dialer,
    idle: Mutex<Vec<Box<dyn Stream>>>,
    /// Calls in flight, each on its own connection: bounded, so that a burst of
    /// requests waits for a connection instead of opening thousands on both nodes.
    in_flight: tokio::sync::Semaphore,
}

/// Connections one pool opens at most, and keeps open while idle.
const MAX_CONNECTIONS: usize = 16;

impl RpcPool {
    pub fn new(address: SocketAddr, host: &str, dialer: Dialer) -> Self {
        RpcPool {
            address,
            host: host.to_string(),
            dialer,
            idle: Mutex::new(Vec::new()),
            in_flight: tokio::sync::Semaphore::new(MAX_CONNECTIONS),
        }
    }

    async fn connect(&self) -> std::io::Result<Box<dyn Stream>> {
        let socket = if self.address.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if let Some(ip) = self.dialer.local_ip
            && ip.is_ipv4() == self.address.is_ipv4()
            && !ip.is_unspecified()
        {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        // A node cut off by a partition drops the handshake: fail fast instead of
        // waiting out the kernel's SYN retries.
        let timeout = crate::client::CONNECT_TIMEOUT;
        let stream = tokio::time::timeout(timeout, socket.connect(self.address))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        stream.set_nodelay(true)?;
        let Some(tls) = self.dialer.tls.clone() else {
            return Ok(Box::new(stream));
        };
        let name = rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|error| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("`{}` is not a TLS server name: {error}", self.host),
            )
        })?;
        let stream = tokio::time::timeout(
            timeout,
            tokio_rustls::TlsConnector::from(tls).connect(name, stream),
        )
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        Ok(Box::new(stream))
    }

    /// Sends `request` and waits for its answer, for at most `timeout` in all.
    pub async fn call(&self, request: &RpcRequest, timeout: Duration) -> Result<RpcResponse, RpcError> {
        let address = self.address;
        let attempt = async {
            let Ok(_permit) = self.in_flight.acquire().await else {
                return Err(RpcError::Timeout { address, timeout });
            };
            let idle = self.idle.lock().pop();
            let mut stream = match idle {
                Some(stream) => stream,
                None => self
                    .connect()
                    .await
                    .map_err(|source| RpcError::Connect { address, source })?,
            };
            write_frame(&mut stream, request)
                .await
                .map_err(|source| RpcError::Io { address, source })?;
            let response = match read_frame(&mut stream).await {
                Ok(Some(response)) => response,
                Ok(None) => {
                    return Err(RpcError::Io {
                        address,
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    });
                }
                Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(RpcError::Protocol {
                        address,
                        reason: error.to_string(),
                    });
                }
                Err(source) => return Err(RpcError::Io { address, source }),
            };
            self.idle.lock().push(stream);
            Ok(response)
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(RpcError::Timeout { address, timeout }),
        }
    }
}
