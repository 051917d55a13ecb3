//! Cluster metadata of a single node: the cluster id and the topics.
//!
//! Stored in the first log dir: `meta.properties` (Kafka's format: `cluster.id`,
//! `node.id`, `version`) and `cluster-metadata.yaml` (topics with ids, partition counts,
//! config overrides and leader epoch), each rewritten atomically on every change.
//! The controller quorum will replace the YAML file; the shapes here are what it will
//! replicate.

use crate::log::checkpoint::write_atomically;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const METADATA_FILE: &str = "cluster-metadata.yaml";
const META_PROPERTIES: &str = "meta.properties";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Topic config overrides (`retention.ms`, ...); absent keys use broker defaults.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    /// Leader epoch of every partition; bumped by leader elections once replication exists.
    #[serde(default)]
    pub leader_epoch: i32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct MetadataFile {
    topics: Vec<TopicRecord>,
    /// Producer ids below this were handed out (in blocks) and are never reused.
    #[serde(default)]
    next_producer_id: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{path} is not valid metadata: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

pub struct MetadataStore {
    dir: PathBuf,
    pub cluster_id: String,
    topics: BTreeMap<String, TopicRecord>,
    next_producer_id: i64,
}

impl MetadataStore {
    /// Loads (or initializes) the metadata in `dir`; `node_id` must match a stored one.
    pub fn open(dir: &Path, node_id: i32) -> Result<Self, MetadataError> {
        let io = |path: &Path, op: &'static str| {
            let path = path.to_path_buf();
            move |source| MetadataError::Io { path, op, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir, "create"))?;
        let properties_path = dir.join(META_PROPERTIES);
        let cluster_id = match std::fs::read_to_string(&properties_path) {
            Ok(text) => {
                let properties = parse_properties(&text);
                if let Some(stored) = properties.get("node.id")
                    && stored != &node_id.to_string()
                {
                    return Err(MetadataError::Invalid {
                        path: properties_path,
                        reason: format!("stored node.id {stored} differs from configured node.id {node_id}"),
                    });
                }
                properties
                    .get("cluster.id")
                    .cloned()
                    .ok_or_else(|| MetadataError::Invalid {
                        path: properties_path.clone(),
                        reason: "no cluster.id".into(),
                    })?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let cluster_id = new_cluster_id();
                let text = format!("version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n");
                write_atomically(&properties_path, text.as_bytes()).map_err(io(&properties_path, "write"))?;
                cluster_id
            }
            Err(error) => return Err(io(&properties_path, "read")(error)),
        };
        let metadata_path = dir.join(METADATA_FILE);
        let file: MetadataFile = match std::fs::read_to_string(&metadata_path) {
            Ok(text) => serde_yaml_ng::from_str(&text).map_err(|error| MetadataError::Invalid {
                path: metadata_path.clone(),
                reason: error.to_string(),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => MetadataFile::default(),
            Err(error) => return Err(io(&metadata_path, "read")(error)),
        };
        Ok(MetadataStore {
            dir: dir.to_path_buf(),
            cluster_id,
            topics: file
                .topics
                .into_iter()
                .map(|topic| (topic.name.clone(), topic))
                .collect(),
            next_producer_id: file.next_producer_id,
        })
    }

    fn save(&self) -> Result<(), MetadataError> {
        let path = self.dir.join(METADATA_FILE);
        let file = MetadataFile {
            topics: self.topics.values().cloned().collect(),
            next_producer_id: self.next_producer_id,
        };
        let text = serde_yaml_ng::to_string(&file).map_err(|error| MetadataError::Invalid {
            path: path.clone(),
            reason: error.to_string(),
        })?;
        write_atomically(&path, text.as_bytes()).map_err(|source| MetadataError::Io {
            path,
            op: "write",
            source,
        })
    }

    /// Reserves `size` producer ids and persists the reservation before returning the
    /// first, so no id is handed out twice, even across restarts.
    pub fn allocate_producer_ids(&mut self, size: i64) -> Result<i64, MetadataError> {
        let start = self.next_producer_id;
        self.next_producer_id = start + size;
        self.save().inspect_err(|_| self.next_producer_id = start)?;
        Ok(start)
    }

    pub fn topic(&self, name: &str) -> Option<&TopicRecord> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, topic_id: uuid::Uuid) -> Option<&TopicRecord> {
        self.topics.values().find(|topic| topic.topic_id == topic_id)
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicRecord> {
        self.topics.values()
    }

    /// Inserts or replaces a topic and persists the change before returning.
    pub fn put_topic(&mut self, topic: TopicRecord) -> Result<(), MetadataError> {
        let previous = self.topics.insert(topic.name.clone(), topic.clone());
        self.save().inspect_err(|_| {
            match previous {
                Some(previous) => self.topics.insert(topic.name.clone(), previous),
                None => self.topics.remove(&topic.name),
            };
        })
    }

    pub fn remove_topic(&mut self, name: &str) -> Result<Option<TopicRecord>, MetadataError> {
        let removed = self.topics.remove(name);
        if let Some(topic) = &removed {
            self.save().inspect_err(|_| {
                self.topics.insert(topic.name.clone(), topic.clone());
            })?;
        }
        Ok(removed)
    }
}

fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect()
}

/// Kafka's cluster id form: a random UUID in unpadded URL-safe base64 (22 chars).
fn new_cluster_id() -> String {
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

/// Kafka's topic name rule: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name `{name}` is illegal"));
    }
    if name.len() > 249 {
        return Err("topic name is longer than 249 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(format!(
            "topic name `{name}` contains characters other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_cluster_id_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MetadataStore::open(dir.path(), 1).unwrap();
        let topic = TopicRecord {
            name: "t".into(),
            topic_id: uuid::Uuid::new_v4(),
            partitions: 3,
            replication_factor: 1,
            configs: BTreeMap::from([("retention.ms".into(), "1000".into())]),
            leader_epoch: 0,
        };
        store.put_topic(topic.clone()).unwrap();
        let cluster_id = store.cluster_id.clone();
        assert_eq!(cluster_id.len(), 22);
        drop(store);
        let reopened = MetadataStore::open(dir.path(), 1).unwrap();
        assert_eq!(reopened.cluster_id, cluster_id);
        assert_eq!(reopened.topic("t"), Some(&topic));
        assert!(MetadataStore::open(dir.path(), 2).is_err());
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("a-b.c_d").is_ok());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
