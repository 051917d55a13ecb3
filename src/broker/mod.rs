//! The broker: owns the config, its view of the cluster metadata, the log manager and
//! every local partition, the group coordinator, and the background work (retention,
//! time-based flushing, checkpoints, group timers, heartbeats to the controller).
//!
//! Start-up ([`Broker::start`]): start this node's controller (combined mode), register
//! with the active controller, wait until the local metadata image has caught up with
//! that registration, then open the logs of the partitions the image gives this broker.
//! From then on [`publisher`] follows the image: it creates, updates and deletes local
//! partitions as topics come and go and leaders move.

mod cleaner;
mod collector;
mod groups;
mod log_dirs;
mod publisher;
pub mod quotas;
mod security;
mod share_state;
mod topics;
mod transactions;

pub use log_dirs::MoveError;
pub use topics::{CreatedTopic, TopicError};

use crate::cluster::image::{Endpoint, MetadataImage, TopicImage};
use crate::cluster::meta_properties;
use crate::common::now_ms;
use crate::config::BrokerConfig;
use crate::controller::client::ControllerClient;
use crate::controller::rpc::{ControllerError, ControllerReply, ControllerRequest};
use crate::controller::{Controller, ControllerConfig};
use crate::group::consumer::ConsumerGroupConfig;
use crate::group::consumer::assignor::AssignorKind;
use crate::group::coordinator::CoordinatorConfig;
use crate::group::coordinator::MigrationPolicy;
use crate::group::state::GroupConfig;
use crate::group::{GroupCoordinator, log_writer};
use crate::log::LogError;
use crate::log::manager::LogManager;
use crate::replication::ReplicaManager;
use crate::replication::manager::topic_log_config;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a broker waits for the controller when a request gives no timeout.
pub const DEFAULT_CONTROLLER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client request waits for a topic the broker creates on its behalf
/// (auto-creation in Metadata, `__consumer_offsets` on first group use). A healthy
/// quorum commits in milliseconds; without one the client gets a retriable error
/// quickly rather than a connection stalled behind the wait.
pub const AUTO_CREATE_TIMEOUT: Duration = Duration::from_secs(2);

/// This process's registration with the controller.
#[derive(Debug, Clone, Copy)]
struct Registration {
    incarnation_id: uuid::Uuid,
    broker_epoch: i64,
}

pub struct Broker {
    pub config: Arc<BrokerConfig>,
    pub cluster_id: String,
    pub groups: GroupCoordinator,
    /// The transaction coordinator (`broker/transactions.rs` is its host side).
    pub transactions: Arc<crate::txn::TxnCoordinator>,
    /// This node's controller (combined mode).
    local_controller: Option<Arc<Controller>>,
    controller: Arc<ControllerClient>,
    /// The metadata image as this node has applied it.
    image: watch::Receiver<Arc<MetadataImage>>,
    /// The metadata offset that the local partitions reflect.
    published: watch::Sender<i64>,
    registration: parking_lot::Mutex<Registration>,
    /// Every partition replica this broker hosts, their logs, fetchers and ISR changes.
    pub replicas: Arc<ReplicaManager>,
    /// Serializes the publisher's passes over the partitions; holds the topics (name
    /// and id) of the last image published, to see which were deleted since.
    publishing: parking_lot::Mutex<HashMap<String, uuid::Uuid>>,
    /// Set at controlled shutdown: heartbeats stop.
    shutting_down: std::sync::atomic::AtomicBool,
    /// The unused part of the current block of producer ids: [next, end).
    producer_ids: tokio::sync::Mutex<(i64, i64)>,
    /// Request, traffic and connection metrics; the broker's state is read at scrape.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Each client's rates against its quotas.
    quotas: quotas::ClientQuotas,
}

impl Broker {
    /// Starts this node: its controller, its registration, its logs. Returns once the
    /// broker can serve clients.
    pub async fn start(config: BrokerConfig) -> anyhow::Result<Arc<Self>> {
        let inter_broker_security = inter_broker_security(&config)?;
        let metadata_log_dir = config
            .log_dirs
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("log.dirs is empty"))?;
        std::fs::create_dir_all(&metadata_log_dir)
            .map_err(|error| anyhow::anyhow!("cannot create {}: {error}", metadata_log_dir.display()))?;
        // Check the node id before touching anything else in the dir.
        let stored_cluster_id = meta_properties::read_cluster_id(&metadata_log_dir, config.node_id)?;
        let local_controller = if config.process_roles.controller {
            Some(Controller::start(ControllerConfig::from_broker_config(&config)).await?)
        } else {
            None
        };
        let controller = connect_controller(&config, local_controller.clone())?;
        let image = match &local_controller {
            Some(local) => local.image(),
            None => {
                // A broker-only node follows the active controller's committed image.
                let (sender, receiver) = watch::channel(Arc::new(MetadataImage::empty()));
                tokio::spawn(publisher::fetch_metadata(controller.clone(), sender));
                receiver
            }
        };
        // How the last process stopped, read before anything changes the log dirs: the
        // controller removes a broker that stopped uncleanly from every ISR and ELR
        // before it can lead again (KIP-966).
        let logs = LogManager::open(&config.log_dirs)?;
        let previous_broker_epoch = logs.previous_broker_epoch();
        if stored_cluster_id.is_none() {
            tracing::info!("first start of this node: its log dirs hold nothing yet");
        } else if previous_broker_epoch < 0 {
            tracing::warn!(
                "the last shutdown was not clean: registering as a broker that may have lost unflushed writes"
            );
        }
        let incarnation_id = uuid::Uuid::new_v4();
        let broker_epoch = register(&controller, &config, incarnation_id, previous_broker_epoch).await;
        let mut image_watch = image.clone();
        let caught_up = image_watch
            .wait_for(|image| image.offset >= broker_epoch && image.cluster_id.is_some())
            .await
            .map_err(|_| anyhow::anyhow!("the metadata quorum stopped"))?
            .clone();
        let cluster_id = caught_up.cluster_id.clone().unwrap_or_default();
        match stored_cluster_id {
            Some(stored) if stored != cluster_id => anyhow::bail!(
                "{} belongs to cluster {stored}, but the metadata quorum is cluster {cluster_id}",
                metadata_log_dir.display()
            ),
            Some(_) => {}
            None => meta_properties::write(&metadata_log_dir, config.node_id, &cluster_id)?,
        }
        let node_id = config.node_id;
        let effective = {
            let own = caught_up.broker_configs.get(&node_id.to_string());
            config.with_dynamic(caught_up.broker_configs.get(""), own)
        };
        let crate::log::manager::LoadedLogs { loaded, failed } = logs.load_all(
            |topic_partition| {
                let topic = caught_up.topic(&topic_partition.topic)?;
                let registration = topic.partition(topic_partition.partition)?;
                registration
                    .replicas
                    .contains(&node_id)
                    .then(|| (topic_log_config(&effective, topic), registration.leader_epoch))
            },
            now_ms(),
        )?;
        let config = Arc::new(config);
        let metrics = Arc::new(crate::metrics::Metrics::new(config.metrics_listener.is_some()));
        let replicas = Arc::new(ReplicaManager::new(crate::replication::manager::Parts {
            config: config.clone(),
            image: image.clone(),
            logs,
            loaded,
            failed,
            controller: controller.clone(),
            inter_broker_security,
            metrics: metrics.clone(),
        }));
        tracing::info!(%cluster_id, n_partitions = replicas.len(), "broker storage loaded");
        let groups = GroupCoordinator::new(CoordinatorConfig {
            group: GroupConfig {
                min_session_timeout_ms: config.group_min_session_timeout_ms,
                max_session_timeout_ms: config.group_max_session_timeout_ms,
                initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            },
            consumer: ConsumerGroupConfig {
                heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
                session_timeout_ms: config.group_consumer_session_timeout_ms,
                assignors: config
                    .group_consumer_assignors
                    .iter()
                    .filter_map(|name| AssignorKind::from_name(name))
                    .collect(),
                max_size: config.group_consumer_max_size.max(1) as usize,
            },
            migration_policy: MigrationPolicy::from_name(&config.group_consumer_migration_policy),
            share: crate::group::share::partition::ShareConfig {
                lock_duration_ms: config.group_share_record_lock_duration_ms,
                delivery_count_limit: config.group_share_delivery_count_limit,
                max_record_locks: config.group_share_partition_max_record_locks,
            },
            share_session_timeout_ms: config.group_share_session_timeout_ms,
            share_heartbeat_interval_ms: config.group_share_heartbeat_interval_ms,
            offsets_retention_ms: config.offsets_retention_ms,
            offset_metadata_max_bytes: config.offset_metadata_max_bytes,
        });
        let (published, _) = watch::channel(-1);
        let setting = |name: &str, default: i64| -> i64 {
            config
                .value(name)
                .and_then(|(value, _)| value.trim().parse().ok())
                .unwrap_or(default)
        };
        let quotas = quotas::ClientQuotas::new(
            setting("quota.window.num", 11) as usize,
            setting("quota.window.size.seconds", 1) * 1000,
        );
        let broker = Arc::new(Broker {
            groups,
            transactions: Arc::new(crate::txn::TxnCoordinator::new(replicas.clone(), config.clone())),
            cluster_id,
            config,
            local_controller,
            controller,
            image,
            published,
            registration: parking_lot::Mutex::new(Registration {
                incarnation_id,
                broker_epoch,
            }),
            replicas,
            publishing: parking_lot::Mutex::new(HashMap::new()),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            producer_ids: tokio::sync::Mutex::new((0, 0)),
            metrics,
            quotas,
        });
        let host: std::sync::Weak<dyn crate::txn::TxnHost> = Arc::downgrade(&broker) as _;
        broker.transactions.attach(host);
        broker
            .metrics
            .register_collector(Box::new(collector::BrokerCollector {
                broker: Arc::downgrade(&broker),
            }));
        // Partitions the image gives this broker but that have no log yet are created now.
        broker.publish(&caught_up)?;
        broker.wait_until_unfenced().await;
        let current = broker.image();
        broker.publish(&current)?;
        crate::group::host::follow_leadership(broker.as_ref());
        crate::group::share_state::follow_leadership(broker.as_ref());
        Ok(broker)
    }

    /// The metadata image as this broker has applied it.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// This node's controller, in combined mode.
    pub fn local_controller(&self) -> Option<&Arc<Controller>> {
        self.local_controller.as_ref()
    }

    /// Sends a request to the active controller.
    pub async fn controller_request(
        &self,
        request: ControllerRequest,
        timeout: Duration,
    ) -> Result<ControllerReply, ControllerError> {
        self.controller.request(request, timeout).await
    }

    /// Whether a topic is one of the broker's own (clients may not write or delete it).
    pub fn is_internal_topic(name: &str) -> bool {
        crate::common::topics::is_internal_topic(name)
    }

    pub fn topic(&self, name: &str) -> Option<TopicImage> {
        self.image.borrow().topic(name).cloned()
    }

    pub fn topic_by_id(&self, topic_id: uuid::Uuid) -> Option<TopicImage> {
        self.image.borrow().topic_by_id(topic_id).cloned()
    }

    pub fn topics(&self) -> Vec<TopicImage> {
        self.image.borrow().topics.values().cloned().collect()
    }

    /// The live leader of `topic`-`index` with its endpoint on `listener`, if any.
    pub fn live_leader(&self, topic: &str, index: i32, listener: &str) -> Option<(i32, Endpoint)> {
        self.image.borrow().live_leader(topic, index, listener)
    }

    /// A producer id never handed out before, from a block the controller allocated.
    pub async fn new_producer_id(&self) -> Result<i64, ControllerError> {
        let mut ids = self.producer_ids.lock().await;
        if ids.0 >= ids.1 {
            let broker_epoch = self.registration.lock().broker_epoch;
            let request = ControllerRequest::AllocateProducerIds {
                broker_id: self.config.node_id,
                broker_epoch,
            };
            match self
                .controller
                .request(request, DEFAULT_CONTROLLER_TIMEOUT)
                .await?
            {
                ControllerReply::ProducerIds { start, len } => *ids = (start, start + len),
                other => {
                    return Err(ControllerError::Unavailable(format!(
                        "unexpected answer {other:?}"
                    )));
                }
            }
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    /// Waits (at most `timeout`) until the local partitions reflect metadata offset
    /// `offset`, so that a write this broker forwarded is visible in its own answers.
    pub async fn wait_for_offset(&self, offset: i64, timeout: Duration) {
        let mut published = self.published.subscribe();
        let _ = tokio::time::timeout(timeout, published.wait_for(|published| *published >= offset)).await;
    }

    async fn wait_for_image(&self, timeout: Duration, condition: impl Fn(&MetadataImage) -> bool) {
        let mut image = self.image.clone();
        let _ = tokio::time::timeout(timeout, image.wait_for(|image| condition(image))).await;
    }

    /// Starts the metadata publisher, heartbeats, retention and flush scheduling, the
    /// group timers and the group log writer; they stop when the broker is dropped.
    pub fn spawn_background(self: &Arc<Self>) {
        if let Some(jobs) = self.groups.take_write_jobs() {
            tokio::spawn(log_writer::run(Arc::downgrade(self), jobs));
        }
        tokio::spawn(publisher::follow_image(Arc::downgrade(self), self.image.clone()));
        tokio::spawn(publisher::heartbeat(Arc::downgrade(self)));
        tokio::spawn(crate::replication::manager::check_isr(Arc::downgrade(
            &self.replicas,
        )));
        tokio::spawn(crate::replication::manager::send_isr_changes(Arc::downgrade(
            &self.replicas,
        )));
        every(self, Duration::from_millis(100), |broker| async move {
            broker.groups.tick(now_ms());
        });
        every(self, share_state::DIRTY_WRITE_INTERVAL, |broker| async move {
            broker.persist_dirty_share_partitions().await;
        });
        every(
            self,
            Duration::from_millis(self.config.offsets_retention_check_interval_ms),
            |broker| async move { crate::group::host::maintain(broker.as_ref(), now_ms()) },
        );
        every(
            self,
            Duration::from_millis(self.config.retention_check_interval_ms),
            |broker| async move {
                let _ = tokio::task::spawn_blocking(move || broker.replicas.apply_retention()).await;
            },
        );
        cleaner::spawn(self, self.replicas.logs().log_dirs());
        every(
            self,
            Duration::from_millis(self.config.transactions.abort_timed_out_interval_ms),
            |broker| async move { broker.transactions.maintain().await },
        );
        every(
            self,
            Duration::from_millis(self.config.transactions.producer_id_expiration_check_interval_ms),
            |broker| async move {
                broker
                    .replicas
                    .expire_producers(broker.config.transactions.producer_id_expiration_ms);
            },
        );
        let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
        every(
            self,
            Duration::from_millis(self.config.flush_scheduler_interval_ms),
            move |broker| {
                let ticks = ticks.clone();
                async move {
                    broker.replicas.flush_due().await;
                    if ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 60 == 59 {
                        let _ =
                            tokio::task::spawn_blocking(move || broker.replicas.write_checkpoints()).await;
                    }
                }
            },
        );
    }

    /// Controlled shutdown (SIGTERM): asks the controller to move this broker's
    /// leaderships to other in-sync replicas and waits until its own image shows that,
    /// while it keeps serving (clients meet NOT_LEADER_OR_FOLLOWER and move on).
    /// Heartbeats stop first, so the broker is not unfenced again.
    pub async fn controlled_shutdown(&self) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let broker_epoch = self.registration.lock().broker_epoch;
        let request = ControllerRequest::ControlledShutdown {
            broker_id: self.config.node_id,
            broker_epoch,
        };
        match self.controller.request(request, Duration::from_secs(5)).await {
            Ok(ControllerReply::Committed { offset }) => {
                self.wait_for_offset(offset, Duration::from_secs(5)).await;
                tracing::info!("controlled shutdown: this broker leads nothing now");
            }
            Ok(other) => tracing::warn!(?other, "unexpected answer to a controlled shutdown"),
            Err(error) => tracing::warn!(%error, "controlled shutdown not possible; stopping anyway"),
        }
    }

    /// Clean shutdown: stop the controller, flush and close every log, write
    /// checkpoints, then the marker.
    pub async fn shutdown(self: &Arc<Self>) -> Result<(), LogError> {
        if let Some(controller) = &self.local_controller {
            controller.shutdown().await;
        }
        let broker = self.clone();
        tokio::task::spawn_blocking(move || broker.close_logs())
            .await
            .map_err(|error| {
                LogError::io(
                    std::path::Path::new("."),
                    "shutdown",
                    std::io::Error::other(error),
                )
            })?
    }

    fn close_logs(&self) -> Result<(), LogError> {
        let result = self.replicas.close_logs();
        if result.is_ok() {
            self.replicas
                .logs()
                .mark_clean_shutdown(self.registration.lock().broker_epoch)?;
        }
        tracing::info!("broker shut down cleanly");
        result
    }
}

/// How replica fetchers and the coordinators secure their connections to other brokers'
/// inter-broker listener; a bad certificate or missing login stops the start.
fn inter_broker_security(
    config: &BrokerConfig,
) -> anyhow::Result<Option<Arc<crate::security::ClientSecurity>>> {
    Ok(
        match config
            .listeners
            .iter()
            .find(|listener| listener.name == config.inter_broker_listener)
        {
            Some(listener) => {
                crate::security::ClientSecurity::for_listener(listener, config.inter_broker_sasl_mechanism)?
            }
            None => None,
        },
    )
}

/// The client this broker reaches the metadata quorum with (this node's own
/// controller first, in combined mode).
fn connect_controller(
    config: &BrokerConfig,
    local_controller: Option<Arc<Controller>>,
) -> anyhow::Result<Arc<ControllerClient>> {
    let voters = crate::controller::quorum_voters(config);
    // Outgoing connections to controllers leave from this node's own address.
    let local_ip = config
        .controller_listener
        .or(config.listener)
        .map(|address| address.ip());
    let controller_tls = match &config.controller_tls {
        Some(settings) => Some(
            crate::security::tls::client_config(settings)
                .map_err(|error| anyhow::anyhow!("the CONTROLLER listener's TLS: {error:#}"))?,
        ),
        None => None,
    };
    Ok(Arc::new(ControllerClient::new(
        local_controller,
        &voters,
        crate::controller::rpc::Dialer {
            local_ip,
            tls: controller_tls,
        },
    )?))
}

/// Runs `work` every `period` (the first run one period from now) while the broker lives.
fn every<F, Fut>(broker: &Arc<Broker>, period: Duration, work: F)
where
    F: Fn(Arc<Broker>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let weak = Arc::downgrade(broker);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(broker) = weak.upgrade() else { break };
            work(broker).await;
        }
    });
}

/// The advertised endpoint of every client listener, registered with the controller.
fn advertised_endpoints(config: &BrokerConfig) -> Vec<Endpoint> {
    config
        .listeners
        .iter()
        .map(|listener| Endpoint {
            listener: listener.name.clone(),
            host: listener.advertised_host.clone(),
            port: listener.advertised_port,
            security_protocol: listener.protocol.name().into(),
        })
        .collect()
}

/// The partition replicas this broker can host: its open-file budget and memory at
/// the configured cost per replica (registered with the controller, which places no
/// more on it).
fn replica_capacity(config: &BrokerConfig) -> Option<crate::cluster::capacity::Capacity> {
    let budget = crate::log::open_files::global().max();
    let capacity = crate::cluster::capacity::capacity(&crate::cluster::capacity::Resources {
        segment_fds: budget.fds as u64,
        segment_maps: budget.maps as u64,
        memory_bytes: crate::log::limits::memory_bytes(),
        fds_per_partition: config.topic_fds_per_partition,
        memory_per_partition: config.topic_memory_per_partition,
    });
    match &capacity {
        Some(capacity) => tracing::info!(
            max_replicas = capacity.max_replicas,
            bound = %capacity.bound,
            "partition replica capacity"
        ),
        None => tracing::info!("partition replica capacity: unbounded"),
    }
    capacity
}

/// Registers with the active controller, retrying until it answers; returns the
/// broker epoch.
async fn register(
    controller: &ControllerClient,
    config: &BrokerConfig,
    incarnation_id: uuid::Uuid,
    previous_broker_epoch: i64,
) -> i64 {
    let request = ControllerRequest::RegisterBroker {
        broker_id: config.node_id,
        incarnation_id,
        endpoints: advertised_endpoints(config),
        rack: config.broker_rack.clone(),
        previous_broker_epoch,
        capacity: replica_capacity(config),
    };
    loop {
        match controller.request(request.clone(), Duration::from_secs(5)).await {
            Ok(ControllerReply::Registered { broker_epoch }) => return broker_epoch,
            Ok(other) => tracing::error!(?other, "unexpected answer to a registration"),
            Err(error) => tracing::warn!(%error, "waiting for the metadata quorum to register this broker"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
