//! The openraft type configuration of the metadata quorum.
//!
//! A Raft entry's payload is one batch of metadata records, applied atomically; a
//! node's id is its `node.id`, its address the host and port of its CONTROLLER listener.

// The error type is openraft's `StorageError`, which its storage traits dictate.
#![allow(clippy::result_large_err)]

use crate::cluster::image::MetadataRecord;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// One Raft entry's worth of metadata records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataBatch(pub Vec<MetadataRecord>);

impl std::fmt::Display for MetadataBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} metadata record(s)", self.0.len())
    }
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = MetadataBatch,
        R = (),
);

pub type NodeId = u64;
pub type Node = openraft::BasicNode;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type Raft = openraft::Raft<TypeConfig>;

/// A storage error as openraft wants it, from any error and what was being done.
pub fn storage_error(
    subject: openraft::ErrorSubject<NodeId>,
    verb: openraft::ErrorVerb,
    error: impl std::fmt::Display,
) -> StorageError {
    let error = std::io::Error::other(error.to_string());
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::new(&error)).into()
}
