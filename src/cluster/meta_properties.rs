//! A log dir's identity, and the metadata file of single-node versions.
//!
//! `meta.properties` (Kafka's format: `version`, `cluster.id`, `node.id`) in the first log
//! dir says which node and cluster the data belongs to; a node refuses to start on a dir
//! of another node or cluster.
//!
//! Before the controller quorum existed, a single node kept its topics in
//! `cluster-metadata.yaml`. Such a dir is upgraded in place: the first active controller
//! writes the file's topics (same ids, partition counts, configs and leader epochs, with
//! this node as the only replica) and its producer-id mark as metadata records, and the
//! file is then renamed to `cluster-metadata.yaml.migrated`.

use super::image::MetadataRecord;
use crate::common::files::write_atomically;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const META_PROPERTIES: &str = "meta.properties";
const LEGACY_METADATA_FILE: &str = "cluster-metadata.yaml";

#[derive(Debug, thiserror::Error)]
pub enum MetaPropertiesError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect()
}

/// The cluster id stored in `dir`, checking that the stored node id is `node_id`.
pub fn read_cluster_id(dir: &Path, node_id: i32) -> Result<Option<String>, MetaPropertiesError> {
    let path = dir.join(META_PROPERTIES);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MetaPropertiesError::Io {
                path,
                op: "read",
                source,
            });
        }
    };
    let properties = parse_properties(&text);
    if let Some(stored) = properties.get("node.id")
        && stored != &node_id.to_string()
    {
        return Err(MetaPropertiesError::Invalid {
            path,
            reason: format!("stored node.id {stored} differs from configured node.id {node_id}"),
        });
    }
    Ok(properties.get("cluster.id").cloned())
}

/// Records the node and cluster ids in `dir`.
pub fn write(dir: &Path, node_id: i32, cluster_id: &str) -> Result<(), MetaPropertiesError> {
    let path = dir.join(META_PROPERTIES);
    let text = format!("version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n");
    write_atomically(&path, text.as_bytes()).map_err(|source| MetaPropertiesError::Io {
        path,
        op: "write",
        source,
    })
}

/// Kafka's cluster id form: a random UUID in unpadded URL-safe base64 (22 chars).
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u32 = 0;
    let mut n_bits = 0;
    let mut out = String::with_capacity(22);
    for byte in bytes {
        bits = (bits << 8) | byte as u32;
        n_bits += 8;
        while n_bits >= 6 {
            n_bits -= 6;
            out.push(ALPHABET[((bits >> n_bits) & 63) as usize] as char);
        }
    }
    if n_bits > 0 {
        out.push(ALPHABET[((bits << (6 - n_bits)) & 63) as usize] as char);
    }
    out
}

#[derive(Debug, Deserialize)]
struct LegacyTopic {
    name: String,
    topic_id: uuid::Uuid,
    partitions: i32,
    #[serde(default)]
    configs: BTreeMap<String, String>,
    #[serde(default)]
    leader_epoch: i32,
}

#[derive(Debug, Default, Deserialize)]
struct LegacyFile {
    #[serde(default)]
    topics: Vec<LegacyTopic>,
    #[serde(default)]
    next_producer_id: i64,
}

/// The single-node metadata file of `dir`, if there is one, as the records that carry
/// it into the quorum with `node_id` as every partition's replica.
pub fn read_legacy(dir: &Path, node_id: i32) -> Result<Option<Vec<MetadataRecord>>, MetaPropertiesError> {
    let path = dir.join(LEGACY_METADATA_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MetaPropertiesError::Io {
                path,
                op: "read",
                source,
            });
        }
    };
    let file: LegacyFile = serde_yaml_ng::from_str(&text).map_err(|error| MetaPropertiesError::Invalid {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    let mut records = Vec::new();
    for topic in file.topics {
        records.push(MetadataRecord::Topic {
            name: topic.name,
            topic_id: topic.topic_id,
        });
        if !topic.configs.is_empty() {
            records.push(MetadataRecord::TopicConfigs {
                topic_id: topic.topic_id,
                configs: topic.configs,
            });
        }
        for partition in 0..topic.partitions {
            records.push(MetadataRecord::Partition {
                topic_id: topic.topic_id,
                partition,
                replicas: vec![node_id],
                isr: vec![node_id],
                leader: node_id,
                leader_epoch: topic.leader_epoch,
            });
        }
    }
    if file.next_producer_id > 0 {
        records.push(MetadataRecord::ProducerIds {
            broker_id: node_id,
            next_producer_id: file.next_producer_id,
        });
    }
    Ok(Some(records))
}

/// Marks the single-node metadata file as carried over, so it is not read again.
pub fn retire_legacy(dir: &Path) -> Result<(), MetaPropertiesError> {
    let path = dir.join(LEGACY_METADATA_FILE);
    let retired = dir.join(format!("{LEGACY_METADATA_FILE}.migrated"));
    std::fs::rename(&path, &retired).map_err(|source| MetaPropertiesError::Io {
        path,
        op: "rename",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::image::MetadataImage;

    #[test]
    fn node_and_cluster_ids_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_cluster_id(dir.path(), 1).unwrap(), None);
        let cluster_id = new_cluster_id();
        assert_eq!(cluster_id.len(), 22);
        write(dir.path(), 1, &cluster_id).unwrap();
        assert_eq!(read_cluster_id(dir.path(), 1).unwrap(), Some(cluster_id));
        assert!(read_cluster_id(dir.path(), 2).is_err());
    }

    #[test]
    fn legacy_topics_become_records() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_legacy(dir.path(), 0).unwrap().is_none());
        std::fs::write(
            dir.path().join(LEGACY_METADATA_FILE),
            "topics:\n- name: t\n  topic_id: 6f1d0c4e-4a47-4a1e-9b43-0e8e5c1f1a01\n  partitions: 2\n  replication_factor: 1\n  configs:\n    retention.ms: '5'\n  leader_epoch: 3\nnext_producer_id: 2000\n",
        )
        .unwrap();
        let records = read_legacy(dir.path(), 0).unwrap().unwrap();
        let mut image = MetadataImage::empty();
        image.apply_batch(0, &records);
        let topic = image.topic("t").unwrap();
        assert_eq!(topic.n_partitions(), 2);
        assert_eq!(topic.partitions[1].leader_epoch, 3);
        assert_eq!(topic.partitions[1].replicas, vec![0]);
        assert_eq!(topic.configs.get("retention.ms").map(String::as_str), Some("5"));
        assert_eq!(image.next_producer_id, 2000);
        retire_legacy(dir.path()).unwrap();
        assert!(read_legacy(dir.path(), 0).unwrap().is_none());
    }
}
