//! The cluster metadata image: a pure state machine over metadata records.
//!
//! Every change to cluster metadata is a [`MetadataRecord`], committed through the
//! controller quorum in a batch (one Raft entry) and applied here in log order, on every
//! node. [`MetadataImage::apply`] does no IO and never fails: a record that does not fit
//! the image (a partition of an unknown topic, a fence of an unknown broker) is skipped,
//! so replaying the same records always yields the same image, whether from the start of
//! the log, from a snapshot, or one batch at a time.
//!
//! The image holds what Kafka's KRaft image holds: the cluster id, registered brokers
//! (endpoints, incarnation, epoch, fenced state), topics (id, partitions with replicas,
//! ISR, leader, leader epoch and partition epoch, config overrides), the producer-id
//! high-water mark and users' SCRAM credentials.

use super::capacity::Capacity;
use crate::security::acl::AclBinding;
use crate::security::scram::{ScramCredential, ScramHash};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// "No leader" in a partition registration, as Kafka writes it.
pub const NO_LEADER: i32 = -1;

/// One advertised listener of a broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    /// Random per process start: tells a restarted broker from the one that was running.
    pub incarnation_id: uuid::Uuid,
    /// The metadata offset of the registration record; heartbeats must carry it.
    pub broker_epoch: i64,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// A fenced broker leads nothing and is left out of Metadata responses.
    pub fenced: bool,
    /// The partition replicas it can host (None: registered without a limit).
    #[serde(default)]
    pub capacity: Option<Capacity>,
}

impl BrokerRegistration {
    /// The broker's endpoint on the named listener (clients get endpoints of the
    /// listener they connected through).
    pub fn endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|endpoint| endpoint.listener == listener)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRegistration {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// The leader's broker id, or [`NO_LEADER`].
    pub leader: i32,
    /// Bumped at every leader change; stamped into batches and checked by clients.
    pub leader_epoch: i32,
    /// Bumped at every change of this registration (leader or ISR).
    pub partition_epoch: i32,
    /// An ongoing reassignment's replicas being added (KIP-455).
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    /// An ongoing reassignment's replicas being removed.
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
    /// Eligible leader replicas (KIP-966): out of the ISR, but holding everything below
    /// the high watermark, because they left while the ISR was below
    /// `min.insync.replicas` (when the high watermark cannot move).
    #[serde(default)]
    pub elr: Vec<i32>,
    /// The last leader, remembered while the ISR and ELR are empty (KIP-966's
    /// balanced recovery: it may lead again when it returns).
    #[serde(default)]
    pub last_known_elr: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: uuid::Uuid,
    /// Indexed by partition id.
    pub partitions: Vec<PartitionRegistration>,
    /// Topic config overrides (`retention.ms`, ...); absent keys use broker defaults.
    pub configs: BTreeMap<String, String>,
}

impl PartitionRegistration {
    /// A leader and/or ISR change: a new leader bumps the leader epoch; any change the
    /// partition epoch.
    fn change(&mut self, leader: Option<i32>, isr: Option<&Vec<i32>>) {
        if let Some(leader) = leader
            && leader != self.leader
        {
            self.leader = leader;
            self.leader_epoch += 1;
        }
        if let Some(isr) = isr {
            self.isr = isr.clone();
        }
        self.partition_epoch += 1;
    }
}

impl TopicImage {
    pub fn n_partitions(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// The replication factor, as the first partition's replica count.
    pub fn replication_factor(&self) -> i16 {
        self.partitions
            .first()
            .map_or(0, |partition| partition.replicas.len() as i16)
    }

    pub fn partition(&self, index: i32) -> Option<&PartitionRegistration> {
        usize::try_from(index)
            .ok()
            .and_then(|index| self.partitions.get(index))
    }
}

/// One change to the cluster metadata. Records are applied in log order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// Written once, by the first active controller.
    ClusterId {
        cluster_id: String,
    },
    /// A broker (re)registers; a new registration starts fenced.
    RegisterBroker {
        broker_id: i32,
        incarnation_id: uuid::Uuid,
        endpoints: Vec<Endpoint>,
        rack: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capacity: Option<Capacity>,
    },
    FenceBroker {
        broker_id: i32,
        broker_epoch: i64,
    },
    UnfenceBroker {
        broker_id: i32,
        broker_epoch: i64,
    },
    Topic {
        name: String,
        topic_id: uuid::Uuid,
    },
    /// A new partition of an existing topic, with partition id `partition`.
    Partition {
        topic_id: uuid::Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        #[serde(default)]
        leader_epoch: i32,
    },
    /// A leader, ISR and/or ELR change (planned by `cluster::partition_change`); a
    /// leader change bumps the leader epoch, any change bumps the partition epoch.
    PartitionChange {
        topic_id: uuid::Uuid,
        partition: i32,
        leader: Option<i32>,
        isr: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        elr: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_known_elr: Option<Vec<i32>>,
    },
    /// A reassignment's step (`cluster::reassignment`): the replicas with those being
    /// added and removed, and the ISR and leader when they change with it (a leader
    /// change bumps the leader epoch; every change the partition epoch).
    PartitionReassignment {
        topic_id: uuid::Uuid,
        partition: i32,
        replicas: Vec<i32>,
        adding: Vec<i32>,
        removing: Vec<i32>,
        isr: Option<Vec<i32>>,
        leader: Option<i32>,
    },
    RemoveTopic {
        topic_id: uuid::Uuid,
    },
    /// Replaces a topic's config overrides.
    TopicConfigs {
        topic_id: uuid::Uuid,
        configs: BTreeMap<String, String>,
    },
    /// Replaces a group's config overrides (a GROUP config resource); empty removes them.
    GroupConfigs {
        group_id: String,
        configs: BTreeMap<String, String>,
    },
    /// Replaces a BROKER config resource's dynamic configs (KIP-226): `broker` is a
    /// broker id, or empty for the cluster-wide default; empty configs remove them.
    BrokerConfigs {
        broker: String,
        configs: BTreeMap<String, String>,
    },
    /// Replaces one client quota entity's quotas (KIP-546); empty removes them.
    ClientQuotas {
        entity: crate::cluster::quotas::QuotaEntity,
        quotas: BTreeMap<String, crate::cluster::quotas::QuotaValue>,
    },
    /// Producer ids below `next_producer_id` are handed out (to `broker_id`).
    ProducerIds {
        broker_id: i32,
        next_producer_id: i64,
    },
    /// Sets a user's SCRAM credential for one mechanism.
    UserScramCredential {
        name: String,
        mechanism: ScramHash,
        credential: ScramCredential,
    },
    /// Removes a user's SCRAM credential for one mechanism.
    RemoveUserScramCredential {
        name: String,
        mechanism: ScramHash,
    },
    /// Adds an ACL under its id.
    AccessControlEntry {
        id: uuid::Uuid,
        acl: AclBinding,
    },
    RemoveAccessControlEntry {
        id: uuid::Uuid,
    },
}

impl MetadataRecord {
    /// A leader and/or ISR change that leaves the ELR fields as they are.
    pub fn partition_change(
        topic_id: uuid::Uuid,
        partition: i32,
        leader: Option<i32>,
        isr: Option<Vec<i32>>,
    ) -> Self {
        MetadataRecord::PartitionChange {
            topic_id,
            partition,
            leader,
            isr,
            elr: None,
            last_known_elr: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// The metadata offset (Raft log index) of the last applied batch; -1 before any.
    pub offset: i64,
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicImage>,
    /// Topic names by id.
    pub topic_ids: BTreeMap<uuid::Uuid, String>,
    /// Producer ids below this were handed out and are never reused.
    pub next_producer_id: i64,
    /// SCRAM credentials by user and mechanism.
    #[serde(default)]
    pub scram_credentials: BTreeMap<String, BTreeMap<ScramHash, ScramCredential>>,
    /// ACLs by id.
    #[serde(default)]
    pub acls: BTreeMap<uuid::Uuid, AclBinding>,
    /// Group config overrides by group id.
    #[serde(default)]
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Dynamic broker configs by broker id, "" for the cluster-wide default.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Client quotas (user, client-id and their defaults).
    #[serde(default)]
    pub client_quotas: crate::cluster::quotas::ClientQuotas,
}

impl MetadataImage {
    pub fn empty() -> Self {
        MetadataImage {
            offset: -1,
            ..Default::default()
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, topic_id: uuid::Uuid) -> Option<&TopicImage> {
        self.topic_ids
            .get(&topic_id)
            .and_then(|name| self.topics.get(name))
    }

    /// The live (unfenced) leader of `topic`-`index` with its endpoint on `listener`.
    pub fn live_leader(&self, topic: &str, index: i32, listener: &str) -> Option<(i32, Endpoint)> {
        let leader = self.topic(topic)?.partition(index)?.leader;
        let broker = self.brokers.get(&leader).filter(|broker| !broker.fenced)?;
        Some((broker.broker_id, broker.endpoint(listener)?.clone()))
    }

    fn topic_by_id_mut(&mut self, topic_id: uuid::Uuid) -> Option<&mut TopicImage> {
        let name = self.topic_ids.get(&topic_id)?;
        self.topics.get_mut(name)
    }

    fn partition_mut(&mut self, topic_id: uuid::Uuid, partition: i32) -> Option<&mut PartitionRegistration> {
        let index = usize::try_from(partition).ok()?;
        self.topic_by_id_mut(topic_id)?.partitions.get_mut(index)
    }

    /// A user's SCRAM credential for one mechanism.
    pub fn scram_credential(&self, user: &str, mechanism: ScramHash) -> Option<&ScramCredential> {
        self.scram_credentials.get(user)?.get(&mechanism)
    }

    /// Registered brokers that are not fenced.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|broker| !broker.fenced)
    }

    /// The brokers Metadata names to clients: the live ones, and `this_broker` itself
    /// even when fenced (it is answering, so it is reachable).
    pub fn listed_brokers(&self, this_broker: i32) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers
            .values()
            .filter(move |broker| !broker.fenced || broker.broker_id == this_broker)
    }

    pub fn is_live(&self, broker_id: i32) -> bool {
        self.brokers.get(&broker_id).is_some_and(|broker| !broker.fenced)
    }

    /// Applies one batch of records committed at metadata offset `offset`.
    pub fn apply_batch(&mut self, offset: i64, records: &[MetadataRecord]) {
        for record in records {
            self.apply(offset, record);
        }
        self.offset = offset;
    }

    /// Applies one record committed in the batch at `offset`. Never fails: a record that
    /// does not fit the image is skipped (and logged).
    pub fn apply(&mut self, offset: i64, record: &MetadataRecord) {
        let skipped = |why: &str| tracing::warn!(offset, ?record, "skipping metadata record: {why}");
        match record {
            MetadataRecord::ClusterId { cluster_id } => {
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(cluster_id.clone());
                } else {
                    skipped("the cluster id is already set");
                }
            }
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id,
                endpoints,
                rack,
                capacity,
            } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        broker_id: *broker_id,
                        incarnation_id: *incarnation_id,
                        broker_epoch: offset,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        fenced: true,
                        capacity: capacity.clone(),
                    },
                );
            }
            MetadataRecord::FenceBroker {
                broker_id,
                broker_epoch,
            }
            | MetadataRecord::UnfenceBroker {
                broker_id,
                broker_epoch,
            } => match self.brokers.get_mut(broker_id) {
                Some(broker) if broker.broker_epoch == *broker_epoch => {
                    broker.fenced = matches!(record, MetadataRecord::FenceBroker { .. });
                }
                _ => skipped("no such broker registration"),
            },
            MetadataRecord::Topic { name, topic_id } => {
                if self.topics.contains_key(name) || self.topic_ids.contains_key(topic_id) {
                    skipped("the topic exists");
                    return;
                }
                self.topic_ids.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: Vec::new(),
                        configs: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
            } => match self.topic_by_id_mut(*topic_id) {
                Some(topic) if *partition == topic.n_partitions() => {
                    topic.partitions.push(PartitionRegistration {
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        leader: *leader,
                        leader_epoch: *leader_epoch,
                        partition_epoch: 0,
                        adding_replicas: Vec::new(),
                        removing_replicas: Vec::new(),
                        elr: Vec::new(),
                        last_known_elr: Vec::new(),
                    });
                }
                _ => skipped("unknown topic or partition out of sequence"),
            },
            MetadataRecord::PartitionChange {
                topic_id,
                partition,
                leader,
                isr,
                elr,
                last_known_elr,
            } => match self.partition_mut(*topic_id, *partition) {
                Some(registration) => {
                    if let Some(elr) = elr {
                        registration.elr = elr.clone();
                    }
                    if let Some(last_known_elr) = last_known_elr {
                        registration.last_known_elr = last_known_elr.clone();
                    }
                    registration.change(*leader, isr.as_ref());
                }
                None => skipped("unknown partition"),
            },
            MetadataRecord::PartitionReassignment {
                topic_id,
                partition,
                replicas,
                adding,
                removing,
                isr,
                leader,
            } => match self.partition_mut(*topic_id, *partition) {
                Some(registration) => {
                    registration.replicas = replicas.clone();
                    registration.adding_replicas = adding.clone();
                    registration.removing_replicas = removing.clone();
                    // Replicas dropped by a reassignment are no longer eligible.
                    registration.elr.retain(|replica| replicas.contains(replica));
                    registration
                        .last_known_elr
                        .retain(|replica| replicas.contains(replica));
                    registration.change(*leader, isr.as_ref());
                }
                None => skipped("unknown partition"),
            },
            MetadataRecord::RemoveTopic { topic_id } => match self.topic_ids.remove(topic_id) {
                Some(name) => {
                    self.topics.remove(&name);
                }
                None => skipped("unknown topic"),
            },
            MetadataRecord::TopicConfigs { topic_id, configs } => match self.topic_by_id_mut(*topic_id) {
                Some(topic) => topic.configs = configs.clone(),
                None => skipped("unknown topic"),
            },
            MetadataRecord::GroupConfigs { group_id, configs } => {
                if configs.is_empty() {
                    self.group_configs.remove(group_id);
                } else {
                    self.group_configs.insert(group_id.clone(), configs.clone());
                }
            }
            MetadataRecord::BrokerConfigs { broker, configs } => {
                if configs.is_empty() {
                    self.broker_configs.remove(broker);
                } else {
                    self.broker_configs.insert(broker.clone(), configs.clone());
                }
            }
            MetadataRecord::ClientQuotas { entity, quotas } => self.client_quotas.set(entity, quotas),
            MetadataRecord::ProducerIds { next_producer_id, .. } => {
                if *next_producer_id > self.next_producer_id {
                    self.next_producer_id = *next_producer_id;
                } else {
                    skipped("producer ids would go backwards");
                }
            }
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                credential,
            } => {
                self.scram_credentials
                    .entry(name.clone())
                    .or_default()
                    .insert(*mechanism, credential.clone());
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                let removed = self
                    .scram_credentials
                    .get_mut(name)
                    .and_then(|credentials| credentials.remove(mechanism));
                if removed.is_none() {
                    skipped("unknown SCRAM credential");
                }
                if self.scram_credentials.get(name).is_some_and(BTreeMap::is_empty) {
                    self.scram_credentials.remove(name);
                }
            }
            MetadataRecord::AccessControlEntry { id, acl } => {
                self.acls.insert(*id, acl.clone());
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                if self.acls.remove(id).is_none() {
                    skipped("unknown ACL");
                }
            }
        }
    }

    /// The durable facts of the image, in a stable text form for comparing images across
    /// nodes and restarts: cluster id, brokers (ids, endpoints, racks), topics with ids,
    /// configs and replica assignments, and the producer-id mark. What moves with
    /// liveness is left out: fenced state, incarnation and broker epoch, and partition
    /// leaders, ISRs and their epochs (a controlled shutdown moves leadership away, a
    /// restart brings replicas back), as is the offset.
    pub fn canonical_dump(&self) -> String {
        let mut out = String::new();
        let cluster_id = self.cluster_id.as_deref().unwrap_or("-");
        out.push_str(&format!("cluster.id {cluster_id}\n"));
        for broker in self.brokers.values() {
            let endpoints: Vec<String> = broker
                .endpoints
                .iter()
                .map(|endpoint| format!("{}://{}:{}", endpoint.listener, endpoint.host, endpoint.port))
                .collect();
            out.push_str(&format!(
                "broker {} {} rack={}\n",
                broker.broker_id,
                endpoints.join(","),
                broker.rack.as_deref().unwrap_or("-")
            ));
        }
        for topic in self.topics.values() {
            out.push_str(&format!("topic {} id={}\n", topic.name, topic.topic_id));
            for (key, value) in &topic.configs {
                out.push_str(&format!("  config {key}={value}\n"));
            }
            for (index, partition) in topic.partitions.iter().enumerate() {
                out.push_str(&format!(
                    "  partition {index} replicas={:?}\n",
                    partition.replicas
                ));
            }
        }
        for (broker, configs) in &self.broker_configs {
            for (key, value) in configs {
                out.push_str(&format!("broker.config {broker:?} {key}={value}\n"));
            }
        }
        for (entity, quotas) in self.client_quotas.entries() {
            for (key, value) in quotas {
                out.push_str(&format!("quota {entity:?} {key}={}\n", value.0));
            }
        }
        out.push_str(&format!("next.producer.id {}\n", self.next_producer_id));
        for (id, acl) in &self.acls {
            out.push_str(&format!("acl {id} {acl:?}\n"));
        }
        for (user, credentials) in &self.scram_credentials {
            for (mechanism, credential) in credentials {
                out.push_str(&format!(
                    "scram {user} {} iterations={}\n",
                    mechanism.mechanism_name(),
                    credential.iterations
                ));
            }
        }
        out
    }
}

/// Why a topic name breaks Kafka's rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTopicName {
    #[error("topic name `{0}` is illegal")]
    Illegal(String),
    #[error("topic name is longer than 249 characters")]
    TooLong,
    #[error("topic name `{0}` contains characters other than ASCII alphanumerics, '.', '_' and '-'")]
    BadCharacters(String),
}

/// Kafka's topic name rule: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), InvalidTopicName> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(InvalidTopicName::Illegal(name.to_string()));
    }
    if name.len() > 249 {
        return Err(InvalidTopicName::TooLong);
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(InvalidTopicName::BadCharacters(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
