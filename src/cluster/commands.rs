//! Metadata writes as pure plans: a request checked against the current image becomes
//! the records that carry it out, or the reason it is refused. The active controller
//! runs these one at a time against its image and commits the records through the
//! quorum; nothing here does IO.
//!
//! Config keys and values are checked by the broker that received the request (it owns
//! the config definitions and defaults); the plans check what only the image can tell:
//! existence, partition counts, replica placement on live brokers.

use super::capacity;
use super::image::{MetadataImage, MetadataRecord, validate_topic_name};
use super::placement::{self, PlacementError};
use crate::security::scram::{ScramCredential, ScramHash};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a metadata write was refused; the broker maps each to a Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CommandError {
    #[error("topic `{0}` already exists")]
    TopicAlreadyExists(String),
    #[error("unknown topic `{0}`")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("broker {broker_id} is not registered with epoch {broker_epoch}")]
    StaleBrokerEpoch { broker_id: i32, broker_epoch: i64 },
    /// An ISR change from a broker that does not lead in that epoch (any more).
    #[error("not the leader of the partition in leader epoch {leader_epoch}")]
    FencedLeaderEpoch { leader_epoch: i32 },
    /// An ISR change based on an older partition epoch than the current one.
    #[error("partition epoch {sent} is not the current {current}")]
    InvalidUpdateVersion { sent: i32, current: i32 },
    #[error("{0}")]
    IneligibleReplica(String),
    /// A change names something (a SCRAM credential) that does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// No placement fits the brokers' capacity (POLICY_VIOLATION); the message names
    /// the limit.
    #[error("{0}")]
    PolicyViolation(String),
}

impl From<PlacementError> for CommandError {
    fn from(error: PlacementError) -> Self {
        CommandError::InvalidReplicationFactor(error.to_string())
    }
}

/// A topic to create; partitions and replication factor are already resolved (no -1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Manual replica lists, one per partition, instead of placement.
    pub assignments: Option<Vec<Vec<i32>>>,
    pub configs: BTreeMap<String, String>,
}

/// The random choices placement takes, drawn by the caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlacementSeed {
    pub start_index: usize,
    pub shift: usize,
}

impl PlacementSeed {
    pub fn random() -> Self {
        let bits = uuid::Uuid::new_v4().as_u128();
        PlacementSeed {
            start_index: (bits & 0xffff) as usize,
            shift: ((bits >> 16) & 0xffff) as usize,
        }
    }
}

fn live_broker_ids(image: &MetadataImage) -> Vec<i32> {
    image.live_brokers().map(|broker| broker.broker_id).collect()
}

/// Checks manual assignments: one non-empty list of distinct, live brokers per
/// partition, all of the same length.
fn check_assignments(image: &MetadataImage, assignments: &[Vec<i32>]) -> Result<(), CommandError> {
    let invalid = |message: String| Err(CommandError::InvalidReplicaAssignment(message));
    let Some(first) = assignments.first() else {
        return invalid("no partitions in the assignment".into());
    };
    for replicas in assignments {
        if replicas.is_empty() || replicas.len() != first.len() {
            return invalid("every partition needs the same, non-zero number of replicas".into());
        }
        let mut distinct = replicas.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() != replicas.len() {
            return invalid(format!("replicas {replicas:?} repeat a broker"));
        }
        if let Some(unknown) = replicas.iter().find(|replica| !image.is_live(**replica)) {
            return invalid(format!("broker {unknown} is not a live broker"));
        }
    }
    Ok(())
}

/// New partitions' replica lists within the brokers' capacity: Kafka's spread when it
/// fits, else the brokers with the most room; refused when nothing fits.
fn place(
    image: &MetadataImage,
    topic: &str,
    first_partition: i32,
    n_partitions: i32,
    replication_factor: i16,
    seed: PlacementSeed,
) -> Result<Vec<Vec<i32>>, CommandError> {
    let brokers = live_broker_ids(image);
    let spread = placement::assign_replicas(
        &brokers,
        first_partition,
        n_partitions,
        replication_factor,
        seed.start_index,
        seed.shift,
    )?;
    let room = capacity::room(image, &brokers);
    if capacity::check(&room, &spread).is_ok() {
        return Ok(spread);
    }
    capacity::assign_by_room(&room, n_partitions, replication_factor as usize, seed.start_index).map_err(
        |(broker, short)| {
            CommandError::PolicyViolation(format!(
                "{n_partitions} partitions of `{topic}` with replication factor {replication_factor} \
                 do not fit the brokers' capacity ({short} found no room): {}",
                capacity::over_capacity_message(image, broker)
            ))
        },
    )
}

/// Manual assignments must fit the brokers' capacity too.
fn check_capacity(image: &MetadataImage, topic: &str, assignments: &[Vec<i32>]) -> Result<(), CommandError> {
    let brokers: Vec<i32> = image.brokers.keys().copied().collect();
    capacity::check(&capacity::room(image, &brokers), assignments).map_err(|(broker, count)| {
        CommandError::PolicyViolation(format!(
            "the replica assignment of `{topic}` gives broker {broker} {count} more replicas: {}",
            capacity::over_capacity_message(image, broker)
        ))
    })
}

fn partition_records(
    topic_id: uuid::Uuid,
    first_partition: i32,
    assignments: Vec<Vec<i32>>,
) -> impl Iterator<Item = MetadataRecord> {
    assignments
        .into_iter()
        .enumerate()
        .map(move |(index, replicas)| MetadataRecord::Partition {
            topic_id,
            partition: first_partition + index as i32,
            isr: replicas.clone(),
            leader: replicas[0],
            replicas,
            leader_epoch: 0,
        })
}

/// The records that create `topic` with id `topic_id`.
pub fn create_topic(
    image: &MetadataImage,
    topic: &NewTopic,
    topic_id: uuid::Uuid,
    seed: PlacementSeed,
) -> Result<Vec<MetadataRecord>, CommandError> {
    validate_topic_name(&topic.name).map_err(|invalid| CommandError::InvalidTopic(invalid.to_string()))?;
    if image.topic(&topic.name).is_some() {
        return Err(CommandError::TopicAlreadyExists(topic.name.clone()));
    }
    let assignments = match &topic.assignments {
        Some(assignments) => {
            check_assignments(image, assignments)?;
            check_capacity(image, &topic.name, assignments)?;
            assignments.clone()
        }
        None => {
            if topic.partitions < 1 {
                return Err(CommandError::InvalidPartitions(format!(
                    "number of partitions must be at least 1, got {}",
                    topic.partitions
                )));
            }
            place(
                image,
                &topic.name,
                0,
                topic.partitions,
                topic.replication_factor,
                seed,
            )?
        }
    };
    let mut records = vec![MetadataRecord::Topic {
        name: topic.name.clone(),
        topic_id,
    }];
    if !topic.configs.is_empty() {
        records.push(MetadataRecord::TopicConfigs {
            topic_id,
            configs: topic.configs.clone(),
        });
    }
    records.extend(partition_records(topic_id, 0, assignments));
    Ok(records)
}

pub fn delete_topic(image: &MetadataImage, name: &str) -> Result<Vec<MetadataRecord>, CommandError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| CommandError::UnknownTopic(name.to_string()))?;
    Ok(vec![MetadataRecord::RemoveTopic {
        topic_id: topic.topic_id,
    }])
}

/// The records that raise `name` to `count` partitions (never lower).
pub fn create_partitions(
    image: &MetadataImage,
    name: &str,
    count: i32,
    assignments: Option<&[Vec<i32>]>,
    seed: PlacementSeed,
) -> Result<Vec<MetadataRecord>, CommandError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| CommandError::UnknownTopic(name.to_string()))?;
    let current = topic.n_partitions();
    if count <= current {
        return Err(CommandError::InvalidPartitions(format!(
            "topic currently has {current} partitions, {count} would not be an increase"
        )));
    }
    let assignments = match assignments {
        Some(assignments) => {
            if assignments.len() as i32 != count - current {
                return Err(CommandError::InvalidReplicaAssignment(format!(
                    "{} assignments for {} new partitions",
                    assignments.len(),
                    count - current
                )));
            }
            check_assignments(image, assignments)?;
            if assignments[0].len() as i16 != topic.replication_factor() {
                return Err(CommandError::InvalidReplicaAssignment(
                    "new partitions must have the topic's replication factor".into(),
                ));
            }
            check_capacity(image, name, assignments)?;
            assignments.to_vec()
        }
        None => place(
            image,
            name,
            current,
            count - current,
            topic.replication_factor(),
            seed,
        )?,
    };
    Ok(partition_records(topic.topic_id, current, assignments).collect())
}

pub fn set_topic_configs(
    image: &MetadataImage,
    name: &str,
    configs: BTreeMap<String, String>,
) -> Result<Vec<MetadataRecord>, CommandError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| CommandError::UnknownTopic(name.to_string()))?;
    Ok(vec![MetadataRecord::TopicConfigs {
        topic_id: topic.topic_id,
        configs,
    }])
}

/// A group's config overrides (a group need not exist to have them, as in Kafka).
pub fn set_group_configs(group_id: String, configs: BTreeMap<String, String>) -> Vec<MetadataRecord> {
    vec![MetadataRecord::GroupConfigs { group_id, configs }]
}

/// A BROKER config resource's dynamic configs (a broker id, or "" for the default).
pub fn set_broker_configs(broker: String, configs: BTreeMap<String, String>) -> Vec<MetadataRecord> {
    vec![MetadataRecord::BrokerConfigs { broker, configs }]
}

/// Client quota changes: each entity's quotas with `changes` applied (a value of None
/// removes that key).
pub fn alter_client_quotas(
    image: &MetadataImage,
    changes: Vec<(crate::cluster::quotas::QuotaEntity, BTreeMap<String, Option<f64>>)>,
) -> Vec<MetadataRecord> {
    let mut quotas = image.client_quotas.clone();
    let mut records = Vec::new();
    for (entity, change) in changes {
        let entity = crate::cluster::quotas::normalized(entity);
        let mut values = quotas.get(&entity).cloned().unwrap_or_default();
        for (key, value) in change {
            match value {
                Some(value) => values.insert(key, crate::cluster::quotas::QuotaValue(value)),
                None => values.remove(&key),
            };
        }
        quotas.set(&entity, &values);
        records.push(MetadataRecord::ClientQuotas {
            entity,
            quotas: values,
        });
    }
    records
}

/// New ACLs under fresh ids; one the image already holds is not added again.
pub fn create_acls(
    image: &MetadataImage,
    acls: Vec<crate::security::acl::AclBinding>,
) -> Vec<MetadataRecord> {
    let mut records: Vec<MetadataRecord> = Vec::new();
    for acl in acls {
        let present = image.acls.values().any(|existing| *existing == acl)
            || records
                .iter()
                .any(|record| matches!(record, MetadataRecord::AccessControlEntry { acl: added, .. } if *added == acl));
        if !present {
            records.push(MetadataRecord::AccessControlEntry {
                id: uuid::Uuid::new_v4(),
                acl,
            });
        }
    }
    records
}

/// Removes the ACLs with these ids that the image still holds.
pub fn delete_acls(image: &MetadataImage, ids: &[uuid::Uuid]) -> Vec<MetadataRecord> {
    ids.iter()
        .filter(|id| image.acls.contains_key(id))
        .map(|id| MetadataRecord::RemoveAccessControlEntry { id: *id })
        .collect()
}

/// One change of AlterUserScramCredentials, already checked by the broker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ScramChange {
    Upsert {
        name: String,
        mechanism: ScramHash,
        credential: ScramCredential,
    },
    Delete {
        name: String,
        mechanism: ScramHash,
    },
}

/// Sets and removes SCRAM credentials; a deletion of a credential the image does not
/// hold is refused, so nothing of the request is written.
pub fn alter_scram_credentials(
    image: &MetadataImage,
    changes: Vec<ScramChange>,
) -> Result<Vec<MetadataRecord>, CommandError> {
    let mut records = Vec::with_capacity(changes.len());
    for change in changes {
        records.push(match change {
            ScramChange::Upsert {
                name,
                mechanism,
                credential,
            } => MetadataRecord::UserScramCredential {
                name,
                mechanism,
                credential,
            },
            ScramChange::Delete { name, mechanism } => {
                if image.scram_credential(&name, mechanism).is_none() {
                    return Err(CommandError::ResourceNotFound(format!(
                        "no {} credential for user {name}",
                        mechanism.mechanism_name()
                    )));
                }
                MetadataRecord::RemoveUserScramCredential { name, mechanism }
            }
        });
    }
    Ok(records)
}

/// An ISR change proposed by a partition's leader (Kafka's AlterPartition, KIP-497):
/// accepted only from the current leader in its epoch, based on the current partition
/// epoch, naming the leader and only replicas on live brokers.
#[allow(clippy::too_many_arguments)] // AlterPartition's fields, as the request names them
pub fn alter_partition(
    image: &MetadataImage,
    broker_id: i32,
    topic_id: uuid::Uuid,
    partition: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    new_isr: &[i32],
    policy: &super::partition_change::ClusterPolicy,
) -> Result<Vec<MetadataRecord>, CommandError> {
    let topic = image
        .topic_by_id(topic_id)
        .ok_or_else(|| CommandError::UnknownTopic(topic_id.to_string()))?;
    let current = topic
        .partition(partition)
        .ok_or_else(|| CommandError::UnknownTopic(format!("{}-{partition}", topic.name)))?;
    if current.leader != broker_id || current.leader_epoch != leader_epoch {
        return Err(CommandError::FencedLeaderEpoch {
            leader_epoch: current.leader_epoch,
        });
    }
    if current.partition_epoch != partition_epoch {
        return Err(CommandError::InvalidUpdateVersion {
            sent: partition_epoch,
            current: current.partition_epoch,
        });
    }
    if !new_isr.contains(&broker_id) {
        return Err(CommandError::IneligibleReplica(
            "the ISR must hold its leader".into(),
        ));
    }
    for replica in new_isr {
        if !current.replicas.contains(replica) {
            return Err(CommandError::IneligibleReplica(format!(
                "{replica} is not a replica"
            )));
        }
        if !current.isr.contains(replica) && !image.is_live(*replica) {
            return Err(CommandError::IneligibleReplica(format!(
                "broker {replica} is fenced and cannot join the ISR"
            )));
        }
    }
    if new_isr == current.isr.as_slice() {
        return Ok(vec![]);
    }
    // The last target replica of a reassignment caught up: it finishes with this ISR.
    if let Some(finished) =
        super::reassignment::complete_with_isr(image, topic_id, partition, current, new_isr)
    {
        return Ok(vec![finished]);
    }
    // The ELR follows the ISR (KIP-966): members that leave an ISR below
    // `min.insync.replicas` stay eligible; an ISR that reaches it clears the ELR.
    let may_lead = |replica: i32| image.is_live(replica);
    let request = super::partition_change::ChangeRequest {
        target_isr: new_isr.to_vec(),
        unclean_shutdown: None,
        may_lead: &may_lead,
    };
    let (record, _) =
        super::partition_change::plan(topic_id, partition, current, request, policy.for_topic(topic));
    Ok(record.into_iter().collect())
}

/// A block of `size` producer ids for a registered broker: the first id and the record.
pub fn allocate_producer_ids(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
    size: i64,
) -> Result<(i64, MetadataRecord), CommandError> {
    match image.brokers.get(&broker_id) {
        Some(broker) if broker.broker_epoch == broker_epoch => {}
        _ => {
            return Err(CommandError::StaleBrokerEpoch {
                broker_id,
                broker_epoch,
            });
        }
    }
    let start = image.next_producer_id;
    Ok((
        start,
        MetadataRecord::ProducerIds {
            broker_id,
            next_producer_id: start + size,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::partition_change::ClusterPolicy;

    fn cluster(n_brokers: i32) -> MetadataImage {
        let ids: Vec<i32> = (0..n_brokers).collect();
        crate::cluster::test_images::brokers(ids.clone(), &ids)
    }

    fn new_topic(name: &str, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            assignments: None,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn create_topic_places_replicas_on_live_brokers() {
        let mut image = cluster(3);
        let id = uuid::Uuid::from_u128(1);
        let records = create_topic(&image, &new_topic("t", 3, 3), id, PlacementSeed::default()).unwrap();
        image.apply_batch(200, &records);
        let topic = image.topic("t").unwrap();
        assert_eq!(topic.n_partitions(), 3);
        let mut leaders: Vec<i32> = topic
            .partitions
            .iter()
            .map(|partition| partition.leader)
            .collect();
        leaders.sort();
        assert_eq!(leaders, vec![0, 1, 2]);
        assert!(
            topic
                .partitions
                .iter()
                .all(|partition| partition.isr == partition.replicas)
        );
        assert_eq!(
            create_topic(&image, &new_topic("t", 1, 1), id, PlacementSeed::default()),
            Err(CommandError::TopicAlreadyExists("t".into()))
        );
        assert!(matches!(
            create_topic(&image, &new_topic("u", 1, 4), id, PlacementSeed::default()),
            Err(CommandError::InvalidReplicationFactor(_))
        ));
        assert!(matches!(
            create_topic(&image, &new_topic("u", 0, 1), id, PlacementSeed::default()),
            Err(CommandError::InvalidPartitions(_))
        ));
        assert!(matches!(
            create_topic(&image, &new_topic("bad name", 1, 1), id, PlacementSeed::default()),
            Err(CommandError::InvalidTopic(_))
        ));
    }

    /// `cluster(n)` with each broker registered again (same epoch) with `max_replicas`.
    fn cluster_with_capacity(max_replicas: &[u64]) -> MetadataImage {
        let mut image = cluster(max_replicas.len() as i32);
        for (broker_id, max) in max_replicas.iter().enumerate() {
            let mut registration = image.brokers[&(broker_id as i32)].clone();
            registration.capacity = Some(capacity::Capacity {
                max_replicas: *max,
                bound: "a test budget".into(),
            });
            image.brokers.insert(broker_id as i32, registration);
        }
        image
    }

    #[test]
    fn creations_that_no_placement_fits_are_refused_whole() {
        // Room for 4 + 4 + 2 replicas.
        let mut image = cluster_with_capacity(&[4, 4, 2]);
        let id = uuid::Uuid::from_u128(1);
        // Kafka's spread would give broker 2 three of 4 RF=2 partitions' replicas; the
        // room-aware placement moves them to the others.
        let records = create_topic(&image, &new_topic("t", 4, 2), id, PlacementSeed::default()).unwrap();
        image.apply_batch(200, &records);
        assert_eq!(capacity::hosted(&image).values().sum::<u64>(), 8);
        assert!(capacity::hosted(&image)[&2] <= 2);
        // Two replicas of room are left: two more RF=2 partitions do not fit.
        let refused = create_partitions(&image, "t", 6, None, PlacementSeed::default()).unwrap_err();
        let CommandError::PolicyViolation(message) = refused else {
            panic!("{refused:?}");
        };
        assert!(
            message.contains("can host at most") && message.contains("a test budget"),
            "{message}"
        );
        // A topic that does not fit is refused, with no records at all.
        assert!(matches!(
            create_topic(&image, &new_topic("u", 3, 1), id, PlacementSeed::default()),
            Err(CommandError::PolicyViolation(_))
        ));
        // Manual assignments are held to the same limit.
        let mut manual = new_topic("v", 3, 1);
        manual.assignments = Some(vec![vec![2], vec![2], vec![2]]);
        assert!(matches!(
            create_topic(&image, &manual, id, PlacementSeed::default()),
            Err(CommandError::PolicyViolation(_))
        ));
        // Brokers registered without a capacity take anything.
        let unbounded = cluster(3);
        assert!(create_topic(&unbounded, &new_topic("w", 3000, 3), id, PlacementSeed::default()).is_ok());
    }

    #[test]
    fn fenced_brokers_get_no_replicas() {
        let mut image = cluster(3);
        image.apply_batch(
            300,
            &[MetadataRecord::FenceBroker {
                broker_id: 2,
                broker_epoch: 2,
            }],
        );
        let records = create_topic(
            &image,
            &new_topic("t", 4, 2),
            uuid::Uuid::from_u128(1),
            PlacementSeed::default(),
        )
        .unwrap();
        image.apply_batch(301, &records);
        let topic = image.topic("t").unwrap();
        assert!(
            topic
                .partitions
                .iter()
                .all(|partition| !partition.replicas.contains(&2))
        );
        assert!(matches!(
            create_topic(
                &image,
                &new_topic("u", 1, 3),
                uuid::Uuid::from_u128(2),
                PlacementSeed::default()
            ),
            Err(CommandError::InvalidReplicationFactor(_))
        ));
    }

    #[test]
    fn manual_assignments_are_checked() {
        let image = cluster(2);
        let mut topic = new_topic("t", -1, -1);
        topic.assignments = Some(vec![vec![0, 1], vec![1, 0]]);
        let records =
            create_topic(&image, &topic, uuid::Uuid::from_u128(1), PlacementSeed::default()).unwrap();
        assert_eq!(records.len(), 3);
        for bad in [
            vec![vec![0, 0]],
            vec![vec![0, 5]],
            vec![vec![0], vec![0, 1]],
            vec![],
        ] {
            topic.assignments = Some(bad.clone());
            assert!(
                matches!(
                    create_topic(&image, &topic, uuid::Uuid::from_u128(1), PlacementSeed::default()),
                    Err(CommandError::InvalidReplicaAssignment(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn partitions_only_grow_and_keep_the_replication_factor() {
        let mut image = cluster(3);
        let id = uuid::Uuid::from_u128(1);
        image.apply_batch(
            200,
            &create_topic(&image, &new_topic("t", 2, 2), id, PlacementSeed::default()).unwrap(),
        );
        assert!(matches!(
            create_partitions(&image, "t", 2, None, PlacementSeed::default()),
            Err(CommandError::InvalidPartitions(_))
        ));
        assert!(matches!(
            create_partitions(&image, "nope", 3, None, PlacementSeed::default()),
            Err(CommandError::UnknownTopic(_))
        ));
        image.apply_batch(
            201,
            &create_partitions(&image, "t", 5, None, PlacementSeed::default()).unwrap(),
        );
        let topic = image.topic("t").unwrap();
        assert_eq!(topic.n_partitions(), 5);
        assert!(
            topic
                .partitions
                .iter()
                .all(|partition| partition.replicas.len() == 2)
        );
        assert!(matches!(
            create_partitions(&image, "t", 6, Some(&[vec![0]]), PlacementSeed::default()),
            Err(CommandError::InvalidReplicaAssignment(_))
        ));
    }

    #[test]
    fn isr_changes_come_from_the_current_leader_in_the_current_epoch() {
        let mut image = cluster(3);
        let id = uuid::Uuid::from_u128(1);
        let mut topic = new_topic("t", 1, 3);
        topic.assignments = Some(vec![vec![0, 1, 2]]);
        image.apply_batch(
            200,
            &create_topic(&image, &topic, id, PlacementSeed::default()).unwrap(),
        );
        let records = alter_partition(&image, 0, id, 0, 0, 0, &[0, 1], &ClusterPolicy::default()).unwrap();
        image.apply_batch(201, &records);
        let partition = image.topic("t").unwrap().partitions[0].clone();
        assert_eq!(
            (partition.isr.clone(), partition.partition_epoch),
            (vec![0, 1], 1)
        );
        assert!(matches!(
            alter_partition(&image, 0, id, 0, 0, 0, &[0], &ClusterPolicy::default()),
            Err(CommandError::InvalidUpdateVersion { sent: 0, current: 1 })
        ));
        assert!(matches!(
            alter_partition(&image, 1, id, 0, 0, 1, &[1], &ClusterPolicy::default()),
            Err(CommandError::FencedLeaderEpoch { .. })
        ));
        assert!(matches!(
            alter_partition(&image, 0, id, 0, 0, 1, &[1, 2], &ClusterPolicy::default()),
            Err(CommandError::IneligibleReplica(_))
        ));
        assert!(matches!(
            alter_partition(&image, 0, id, 0, 0, 1, &[0, 5], &ClusterPolicy::default()),
            Err(CommandError::IneligibleReplica(_))
        ));
        image.apply_batch(
            202,
            &[MetadataRecord::FenceBroker {
                broker_id: 2,
                broker_epoch: 2,
            }],
        );
        assert!(
            matches!(
                alter_partition(&image, 0, id, 0, 0, 1, &[0, 1, 2], &ClusterPolicy::default()),
                Err(CommandError::IneligibleReplica(_))
            ),
            "a fenced broker cannot join"
        );
        assert_eq!(
            alter_partition(&image, 0, id, 0, 0, 1, &[0, 1], &ClusterPolicy::default()).unwrap(),
            vec![]
        );
    }

    #[test]
    fn configs_deletion_and_producer_ids() {
        let mut image = cluster(1);
        let id = uuid::Uuid::from_u128(1);
        image.apply_batch(
            200,
            &create_topic(&image, &new_topic("t", 1, 1), id, PlacementSeed::default()).unwrap(),
        );
        let configs = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        image.apply_batch(201, &set_topic_configs(&image, "t", configs.clone()).unwrap());
        assert_eq!(image.topic("t").unwrap().configs, configs);
        image.apply_batch(202, &delete_topic(&image, "t").unwrap());
        assert!(image.topic("t").is_none());
        assert!(delete_topic(&image, "t").is_err());
        let (start, record) = allocate_producer_ids(&image, 0, 0, 1000).unwrap();
        assert_eq!(start, 0);
        image.apply_batch(203, &[record]);
        let (start, _) = allocate_producer_ids(&image, 0, 0, 1000).unwrap();
        assert_eq!(start, 1000);
        assert!(allocate_producer_ids(&image, 0, 7, 1000).is_err());
    }
}
