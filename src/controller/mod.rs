//! The controller: a member of the metadata quorum, built on openraft.
//!
//! Every controller runs a Raft node ([`log_store`], [`state_machine`], [`network`]) and
//! serves the CONTROLLER listener ([`server`]). The one that Raft elected leader is the
//! *active controller*: it alone plans metadata writes (with the pure plans of
//! `cluster::commands`, `cluster::lifecycle` and `cluster::placement`) against its image,
//! one at a time, and commits them through the quorum before answering. Brokers reach it
//! through a [`client::ControllerClient`]. It also keeps broker sessions and fences
//! brokers whose heartbeats stop.

pub mod client;
mod liveness;
pub mod log_store;
pub mod network;
pub mod rpc;
pub mod server;
pub mod state_machine;
pub mod types;
mod writes;

use crate::cluster::commands::{self, PlacementSeed};
use crate::cluster::fencing::DeathEvidence;
use crate::cluster::image::MetadataImage;
use crate::cluster::lifecycle::{self, BrokerSessions};
use crate::cluster::partition_change::ClusterPolicy;
use crate::cluster::{meta_properties, placement};
use crate::common::now_ms;
use openraft::error::{ClientWriteError, RaftError};
use parking_lot::Mutex;
use rpc::{
    ControllerError, ControllerReply, ControllerRequest, ControllerResponse, QuorumInfo, ReplicaProgress,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use types::{MetadataBatch, Node, NodeId, Raft};

pub use crate::log::manager::METADATA_DIR;

/// How many producer ids a broker gets at a time.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// Entries between snapshots of the image; older entries are then purged.
const SNAPSHOT_EVERY_ENTRIES: u64 = 500;

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub node_id: i32,
    /// The voters, with their CONTROLLER addresses (`host:port`; unused for one voter).
    pub voters: BTreeMap<i32, String>,
    /// Where this node's CONTROLLER listener binds (None: a single voter needs none).
    pub listener: Option<SocketAddr>,
    /// The metadata log dir (the first of `log.dirs`).
    pub metadata_log_dir: PathBuf,
    pub election_timeout_ms: u64,
    pub broker_session_timeout_ms: i64,
    /// The broker defaults partition changes are planned with
    /// (`unclean.leader.election.enable`, `min.insync.replicas`,
    /// `eligible.leader.replicas.version`).
    pub policy: ClusterPolicy,
    /// The CONTROLLER listener's TLS (None: PLAINTEXT), for both ends of its
    /// connections.
    pub tls: Option<crate::config::TlsSettings>,
    pub authorizer: crate::config::AuthorizerSettings,
    /// `auto.leader.rebalance.enable`: every `leader.imbalance.check.interval.seconds`,
    /// leadership goes back to preferred replicas past
    /// `leader.imbalance.per.broker.percentage` (None: off).
    pub leader_rebalance: Option<LeaderRebalance>,
}

/// When the active controller moves leadership back to preferred replicas.
#[derive(Debug, Clone, Copy)]
pub struct LeaderRebalance {
    pub check_interval_ms: i64,
    pub imbalance_percentage: i64,
}

impl ControllerConfig {
    /// The controller settings of a node's config.
    pub fn from_broker_config(config: &crate::config::BrokerConfig) -> Self {
        let long = |name: &str| -> i64 {
            config
                .value(name)
                .and_then(|(value, _)| value.trim().parse().ok())
                .unwrap_or(0)
        };
        ControllerConfig {
            node_id: config.node_id,
            voters: quorum_voters(config),
            listener: config.controller_listener,
            metadata_log_dir: config.log_dirs.first().cloned().unwrap_or_default(),
            election_timeout_ms: config.election_timeout_ms,
            broker_session_timeout_ms: config.broker_session_timeout_ms,
            policy: ClusterPolicy {
                unclean_default: config
                    .value("unclean.leader.election.enable")
                    .is_some_and(|(value, _)| value.trim().eq_ignore_ascii_case("true")),
                min_insync_replicas_default: config.log.min_insync_replicas,
                elr_enabled: config.eligible_leader_replicas_version >= 1,
            },
            tls: config.controller_tls.clone(),
            authorizer: config.authorizer.clone(),
            leader_rebalance: config
                .value("auto.leader.rebalance.enable")
                .is_some_and(|(value, _)| value.trim().eq_ignore_ascii_case("true"))
                .then(|| LeaderRebalance {
                    check_interval_ms: long("leader.imbalance.check.interval.seconds").saturating_mul(1000),
                    imbalance_percentage: long("leader.imbalance.per.broker.percentage"),
                }),
        }
    }
}

/// `controller.quorum.voters`, or for a lone node without it a one-voter quorum of
/// itself (which needs no network, so its address is never used).
pub fn quorum_voters(config: &crate::config::BrokerConfig) -> BTreeMap<i32, String> {
    if !config.quorum_voters.is_empty() {
        return config.quorum_voters.clone();
    }
    let address = config
        .controller_listener
        .map_or_else(|| "127.0.0.1:0".to_string(), |address| address.to_string());
    BTreeMap::from([(config.node_id, address)])
}

pub struct Controller {
    config: ControllerConfig,
    raft: Raft,
    image: watch::Receiver<Arc<MetadataImage>>,
    /// Metadata writes are planned and committed one at a time.
    write_lock: tokio::sync::Mutex<()>,
    sessions: Mutex<BrokerSessions>,
    /// The term in which this node last became active, to notice a new term.
    active_term: Mutex<Option<u64>>,
    /// Which nodes' CONTROLLER connections ended since they were last heard from
    /// (`cluster::fencing`): a dead process is fenced without waiting for its session.
    evidence: Mutex<DeathEvidence>,
    /// On a follower: the active controller found dead, and when an election was last
    /// asked for.
    dead_leader: Mutex<Option<(i32, i64)>>,
    /// When this active controller last checked the leader balance.
    last_rebalance_ms: Mutex<i64>,
}

impl Controller {
    /// Opens the metadata log and image, starts Raft and the CONTROLLER listener, and
    /// forms the quorum on first start. The image is replayed up to the last commit this
    /// node saw before this returns.
    pub async fn start(config: ControllerConfig) -> anyhow::Result<Arc<Controller>> {
        let dir = config.metadata_log_dir.join(METADATA_DIR);
        crate::log::checkpoint::create_dir_durably(&dir)
            .map_err(|error| anyhow::anyhow!("cannot create {}: {error}", dir.display()))?;
        let log_store = log_store::LogStore::open(&dir.join("raft.redb"))
            .map_err(|error| anyhow::anyhow!("cannot open the metadata log in {}: {error}", dir.display()))?;
        // The log file's entry must survive a power cut, or the votes and entries
        // fsynced into it vanish with it.
        crate::log::checkpoint::sync_dir(&dir)
            .map_err(|error| anyhow::anyhow!("cannot fsync {}: {error}", dir.display()))?;
        let state_machine = state_machine::StateMachine::open(&dir)?;
        let image = state_machine.subscribe();
        let election = config.election_timeout_ms.max(10);
        let raft_config = openraft::Config {
            cluster_name: "ferrolog".into(),
            election_timeout_min: election,
            election_timeout_max: election * 2,
            heartbeat_interval: (election / 10).max(5),
            install_snapshot_timeout: 10_000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_ENTRIES),
            max_in_snapshot_log_to_keep: SNAPSHOT_EVERY_ENTRIES,
            ..Default::default()
        }
        .validate()
        .map_err(|error| anyhow::anyhow!("bad quorum settings: {error}"))?;
        let (server_tls, client_tls) = match &config.tls {
            Some(settings) => (
                Some(
                    crate::security::tls::server_config(settings)
                        .map_err(|error| anyhow::anyhow!("the CONTROLLER listener's TLS: {error:#}"))?,
                ),
                Some(
                    crate::security::tls::client_config(settings)
                        .map_err(|error| anyhow::anyhow!("the CONTROLLER listener's TLS: {error:#}"))?,
                ),
            ),
            None => (None, None),
        };
        let network = network::Network::new(rpc::Dialer {
            local_ip: config.listener.map(|address| address.ip()),
            tls: client_tls,
        });
        let raft = Raft::new(
            config.node_id as NodeId,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|error| anyhow::anyhow!("cannot start the metadata quorum: {error}"))?;
        let controller = Arc::new(Controller {
            config,
            raft,
            image,
            write_lock: tokio::sync::Mutex::new(()),
            sessions: Mutex::new(BrokerSessions::default()),
            active_term: Mutex::new(None),
            evidence: Mutex::new(DeathEvidence::default()),
            dead_leader: Mutex::new(None),
            last_rebalance_ms: Mutex::new(0),
        });
        if let Some(address) = controller.config.listener {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|error| anyhow::anyhow!("cannot listen on CONTROLLER {address}: {error}"))?;
            let admission = server::Admission {
                tls: server_tls,
                authorizer: controller.config.authorizer.clone(),
            };
            tokio::spawn(server::run(listener, Arc::downgrade(&controller), admission));
        }
        if !controller.raft.is_initialized().await? {
            let members: BTreeMap<NodeId, Node> = controller
                .config
                .voters
                .iter()
                .map(|(id, address)| (*id as NodeId, Node::new(address.clone())))
                .collect();
            // Every voter forms the same initial membership; a second attempt is refused
            // harmlessly once any voter's membership entry has reached this node.
            if let Err(error) = controller.raft.initialize(members).await {
                tracing::debug!(%error, "quorum already initialized");
            }
        }
        tokio::spawn(run_duties(Arc::downgrade(&controller)));
        Ok(controller)
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The image as this node has applied it.
    pub fn image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    /// The active controller as this node knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_active(&self) -> bool {
        self.leader() == Some(self.config.node_id as NodeId)
    }

    pub async fn shutdown(&self) {
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "metadata quorum did not shut down cleanly");
        }
    }

    /// Serves a request from a broker; only the active controller acts on it. Reads
    /// are answered at once; each write is decided against the current image and
    /// committed under the write lock (`writes.rs`).
    pub async fn handle(&self, request: ControllerRequest) -> ControllerResponse {
        if !self.is_active() {
            return Err(ControllerError::NotController {
                leader: self.leader(),
            });
        }
        match request {
            ControllerRequest::DescribeQuorum => return Ok(ControllerReply::Quorum(self.describe_quorum())),
            ControllerRequest::FetchMetadata {
                after_offset,
                max_wait_ms,
            } => return Ok(self.fetch_metadata(after_offset, max_wait_ms).await),
            _ => {}
        }
        if let ControllerRequest::BrokerHeartbeat { broker_id, .. }
        | ControllerRequest::RegisterBroker { broker_id, .. } = &request
        {
            self.sessions.lock().touch(*broker_id, now_ms());
            self.evidence.lock().heard(*broker_id, now_ms());
        }
        let _write = self.write_lock.lock().await;
        let image = self.current_image().await?;
        match request {
            ControllerRequest::RegisterBroker {
                broker_id,
                incarnation_id,
                endpoints,
                rack,
                previous_broker_epoch,
                capacity,
            } => {
                let registration = lifecycle::Registration {
                    broker_id,
                    incarnation_id,
                    endpoints,
                    rack,
                    capacity,
                };
                self.register_broker(&image, registration, previous_broker_epoch)
                    .await
            }
            ControllerRequest::BrokerHeartbeat {
                broker_id,
                broker_epoch,
                metadata_offset,
            } => {
                self.broker_heartbeat(&image, broker_id, broker_epoch, metadata_offset)
                    .await
            }
            ControllerRequest::ControlledShutdown {
                broker_id,
                broker_epoch,
            } => self.controlled_shutdown(&image, broker_id, broker_epoch).await,
            ControllerRequest::CreateTopic { topic, validate_only } => {
                let topic_id = uuid::Uuid::new_v4();
                let records = commands::create_topic(&image, &topic, topic_id, PlacementSeed::random())?;
                let offset = self.commit_unless(validate_only, &image, records).await?;
                Ok(ControllerReply::TopicCreated { topic_id, offset })
            }
            ControllerRequest::DeleteTopic { name } => {
                let records = commands::delete_topic(&image, &name)?;
                Ok(ControllerReply::Committed {
                    offset: self.commit(records).await?,
                })
            }
            ControllerRequest::CreatePartitions {
                name,
                count,
                assignments,
                validate_only,
            } => {
                let records = commands::create_partitions(
                    &image,
                    &name,
                    count,
                    assignments.as_deref(),
                    PlacementSeed::random(),
                )?;
                let offset = self.commit_unless(validate_only, &image, records).await?;
                Ok(ControllerReply::Committed { offset })
            }
            ControllerRequest::SetTopicConfigs {
                name,
                configs,
                validate_only,
            } => {
                let records = commands::set_topic_configs(&image, &name, configs)?;
                let offset = self.commit_unless(validate_only, &image, records).await?;
                Ok(ControllerReply::Committed { offset })
            }
            ControllerRequest::SetGroupConfigs {
                group_id,
                configs,
                validate_only,
            } => {
                let records = commands::set_group_configs(group_id, configs);
                let offset = self.commit_unless(validate_only, &image, records).await?;
                Ok(ControllerReply::Committed { offset })
            }
            ControllerRequest::SetBrokerConfigs {
                broker,
                configs,
                validate_only,
            } => {
                let records = commands::set_broker_configs(broker, configs);
                let offset = self.commit_unless(validate_only, &image, records).await?;
                Ok(ControllerReply::Committed { offset })
            }
            ControllerRequest::AlterClientQuotas {
                changes,
                validate_only,
            } => {
                let records = commands::alter_client_quotas(&image, changes);
                let offset = self.commit_unless(validate_only, &image, records).await?;
                Ok(ControllerReply::Committed { offset })
            }
            ControllerRequest::CreateAcls { acls } => {
                let records = commands::create_acls(&image, acls);
                let offset = self.commit_any(&image, records).await?;
                Ok(ControllerReply::Committed { offset })
            }
            ControllerRequest::DeleteAcls { ids } => {
                let records = commands::delete_acls(&image, &ids);
                let offset = self.commit_any(&image, records).await?;
                Ok(ControllerReply::Committed { offset })
            }
            ControllerRequest::AlterScramCredentials { changes } => {
                let records = commands::alter_scram_credentials(&image, changes)?;
                Ok(ControllerReply::Committed {
                    offset: self.commit(records).await?,
                })
            }
            ControllerRequest::AlterPartition { broker_id, changes } => {
                self.alter_partition(&image, broker_id, &changes).await
            }
            ControllerRequest::AllocateProducerIds {
                broker_id,
                broker_epoch,
            } => {
                let (start, record) =
                    commands::allocate_producer_ids(&image, broker_id, broker_epoch, PRODUCER_ID_BLOCK)?;
                self.commit(vec![record]).await?;
                Ok(ControllerReply::ProducerIds {
                    start,
                    len: PRODUCER_ID_BLOCK,
                })
            }
            ControllerRequest::ElectLeaders { election, partitions } => {
                self.elect_leaders(&image, election, partitions).await
            }
            ControllerRequest::AlterPartitionReassignments { changes } => {
                self.reassign(&image, changes).await
            }
            // Reads are answered before the write lock; these arms only keep the match whole.
            ControllerRequest::DescribeQuorum => Ok(ControllerReply::Quorum(self.describe_quorum())),
            ControllerRequest::FetchMetadata { .. } => Ok(ControllerReply::Metadata(Some(Box::new(
                MetadataImage::clone(&image),
            )))),
        }
    }

    /// How long the active controller waits for the quorum before giving up on a write.
    fn commit_timeout(&self) -> Duration {
        Duration::from_millis((self.config.election_timeout_ms * 4).max(2_000))
    }

    /// The image with everything committed so far applied (a linearizable read on the
    /// leader), or why it cannot be had.
    async fn current_image(&self) -> Result<Arc<MetadataImage>, ControllerError> {
        match tokio::time::timeout(self.commit_timeout(), self.raft.ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(self.image.borrow().clone()),
            Ok(Err(RaftError::APIError(error))) => match error {
                openraft::error::CheckIsLeaderError::ForwardToLeader(forward) => {
                    Err(ControllerError::NotController {
                        leader: forward.leader_id,
                    })
                }
                other => Err(ControllerError::Unavailable(other.to_string())),
            },
            Ok(Err(error)) => Err(ControllerError::Unavailable(error.to_string())),
            Err(_) => Err(ControllerError::Unavailable(format!(
                "no majority of voters answered within {:?}",
                self.commit_timeout()
            ))),
        }
    }

    /// Commits `records` unless there are none; the offset the outcome is visible at.
    async fn commit_any(
        &self,
        image: &MetadataImage,
        records: Vec<crate::cluster::image::MetadataRecord>,
    ) -> Result<i64, ControllerError> {
        if records.is_empty() {
            Ok(image.offset)
        } else {
            self.commit(records).await
        }
    }

    /// Commits one batch through the quorum and returns its metadata offset once it is
    /// applied here.
    async fn commit(
        &self,
        records: Vec<crate::cluster::image::MetadataRecord>,
    ) -> Result<i64, ControllerError> {
        let write = self.raft.client_write(MetadataBatch(records));
        match tokio::time::timeout(self.commit_timeout(), write).await {
            Ok(Ok(response)) => Ok(response.log_id.index as i64),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                Err(ControllerError::NotController {
                    leader: forward.leader_id,
                })
            }
            Ok(Err(error)) => Err(ControllerError::Unavailable(error.to_string())),
            Err(_) => Err(ControllerError::Unavailable(format!(
                "the write was not committed within {:?}; a majority of voters may be down",
                self.commit_timeout()
            ))),
        }
    }

    /// The quorum as this node sees it; replication progress is known on the leader.
    pub fn describe_quorum(&self) -> QuorumInfo {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let replication = metrics.replication.clone().unwrap_or_default();
        let last_log_end = metrics.last_log_index.map_or(0, |index| index as i64 + 1);
        let progress = |id: NodeId| -> i64 {
            if id == metrics.id {
                return last_log_end;
            }
            match replication.get(&id) {
                Some(Some(log_id)) => log_id.index as i64 + 1,
                Some(None) => 0,
                None => -1,
            }
        };
        let voter_ids: Vec<NodeId> = membership.voter_ids().collect();
        let voters = voter_ids
            .iter()
            .map(|id| ReplicaProgress {
                node_id: *id as i32,
                log_end_offset: progress(*id),
            })
            .collect();
        let observers = membership
            .learner_ids()
            .map(|id| ReplicaProgress {
                node_id: id as i32,
                log_end_offset: progress(id),
            })
            .collect();
        let voter_endpoints = voter_ids
            .iter()
            .filter_map(|id| {
                let node = membership.get_node(id)?;
                let (host, port) = node.addr.rsplit_once(':')?;
                Some((*id as i32, host.to_string(), port.parse().ok()?))
            })
            .collect();
        QuorumInfo {
            leader_id: metrics.current_leader.map_or(-1, |id| id as i32),
            leader_epoch: metrics.current_term as i32,
            high_watermark: metrics.last_applied.map_or(0, |log_id| log_id.index as i64 + 1),
            voters,
            observers,
            voter_endpoints,
        }
    }

    /// The active controller's periodic work: on taking over, start broker sessions
    /// afresh and write the cluster id (carrying over a single-node metadata file, if
    /// this node has one) when the log has none; then fence brokers whose sessions ran
    /// out.
    async fn duties(&self) {
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.current_leader != Some(self.config.node_id as NodeId) {
            *self.active_term.lock() = None;
            self.replace_dead_leader().await;
            return;
        }
        // Probed before the write lock is taken: a probe may wait for its timeout.
        let latest = self.image.borrow().clone();
        let dead = self.dead_brokers(&latest).await;
        let newly_active = {
            let mut active_term = self.active_term.lock();
            let fresh = *active_term != Some(metrics.current_term);
            *active_term = Some(metrics.current_term);
            fresh
        };
        let _write = self.write_lock.lock().await;
        let Ok(image) = self.current_image().await else {
            return;
        };
        if newly_active {
            tracing::info!(term = metrics.current_term, "this node is the active controller");
            self.sessions.lock().reset(&image, now_ms());
            *self.last_rebalance_ms.lock() = now_ms();
        }
        if image.cluster_id.is_none()
            && let Err(error) = self.bootstrap().await
        {
            tracing::error!(%error, "cannot write the cluster id");
            return;
        }
        for (broker_id, broker_epoch) in dead {
            self.fence_dead(broker_id, broker_epoch).await;
        }
        self.rebalance_leaders().await;
        let image = self.image.borrow().clone();
        let expired = self
            .sessions
            .lock()
            .expired(&image, self.config.broker_session_timeout_ms, now_ms());
        for fence in expired {
            let crate::cluster::image::MetadataRecord::FenceBroker { broker_id, .. } = &fence else {
                continue;
            };
            let broker_id = *broker_id;
            let image = self.image.borrow().clone();
            let mut records = vec![fence];
            records.extend(placement::on_broker_fenced(
                &image,
                broker_id,
                &self.config.policy,
            ));
            match self.commit(records).await {
                Ok(_) => tracing::warn!(
                    broker_id,
                    "broker fenced: no heartbeat within broker.session.timeout.ms"
                ),
                Err(error) => tracing::warn!(broker_id, %error, "could not fence broker"),
            }
        }
    }

    async fn bootstrap(&self) -> anyhow::Result<()> {
        let dir = &self.config.metadata_log_dir;
        let cluster_id = meta_properties::read_cluster_id(dir, self.config.node_id)?
            .unwrap_or_else(meta_properties::new_cluster_id);
        let mut records = vec![crate::cluster::image::MetadataRecord::ClusterId {
            cluster_id: cluster_id.clone(),
        }];
        let legacy = meta_properties::read_legacy(dir, self.config.node_id)?;
        let migrated = legacy.is_some();
        records.extend(legacy.unwrap_or_default());
        self.commit(records)
            .await
            .map_err(|error| anyhow::anyhow!(error))?;
        tracing::info!(%cluster_id, migrated, "cluster id written");
        if migrated {
            meta_properties::retire_legacy(dir)?;
        }
        Ok(())
    }
}

/// The committed metadata image in a stopped node's metadata log dir: its snapshot
/// with every committed entry after it replayed. For operators and tests (the redb
/// file is locked while the node runs).
pub fn read_committed_image(metadata_log_dir: &std::path::Path) -> anyhow::Result<MetadataImage> {
    let dir = metadata_log_dir.join(METADATA_DIR);
    let log_store = log_store::LogStore::open(&dir.join("raft.redb"))
        .map_err(|error| anyhow::anyhow!("cannot open the metadata log in {}: {error}", dir.display()))?;
    let snapshot = state_machine::StateMachine::open(&dir)?;
    let mut image = MetadataImage::clone(&snapshot.subscribe().borrow());
    let committed = log_store
        .committed()
        .map_err(|error| anyhow::anyhow!("{error}"))?
        .map_or(-1, |log_id| log_id.index as i64);
    let start = (image.offset + 1).max(0) as u64;
    if committed >= start as i64 {
        for entry in log_store
            .entries(start..=committed as u64)
            .map_err(|error| anyhow::anyhow!("{error}"))?
        {
            let offset = entry.log_id.index as i64;
            match entry.payload {
                openraft::EntryPayload::Normal(MetadataBatch(records)) => image.apply_batch(offset, &records),
                _ => image.apply_batch(offset, &[]),
            }
        }
    }
    Ok(image)
}

async fn run_duties(controller: std::sync::Weak<Controller>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(controller) = controller.upgrade() else {
            break;
        };
        controller.duties().await;
    }
}
