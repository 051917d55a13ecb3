//! The quorum's state machine: the metadata image, fed by committed Raft entries.
//!
//! Each applied batch goes through [`MetadataImage::apply_batch`] (the pure core) and the
//! new image is published on a watch channel, which the broker side follows. Snapshots
//! are the image in JSON with openraft's snapshot meta, kept in `snapshot.json` beside
//! the log (written atomically), so a restart loads the snapshot and replays only the
//! committed entries after it.

// The error type is openraft's `StorageError`, which its storage traits dictate.
#![allow(clippy::result_large_err)]

use super::types::{
    Entry, LogId, MetadataBatch, SnapshotMeta, StorageError, StoredMembership, TypeConfig, storage_error,
};
use crate::cluster::image::MetadataImage;
use crate::common::files::write_atomically;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

const SNAPSHOT_FILE: &str = "snapshot.json";

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    image: MetadataImage,
}

struct State {
    image: MetadataImage,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    n_snapshots: u64,
}

/// The state machine handed to openraft; clones share the state (the snapshot builder
/// is a clone).
#[derive(Clone)]
pub struct StateMachine {
    state: Arc<Mutex<State>>,
    dir: PathBuf,
    published: Arc<watch::Sender<Arc<MetadataImage>>>,
}

fn snapshot_error(verb: ErrorVerb, error: impl std::fmt::Display) -> StorageError {
    storage_error(ErrorSubject::Snapshot(None), verb, error)
}

/// Why the metadata snapshot could not be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotLoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a metadata snapshot: {source}")]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl StateMachine {
    /// Loads the last snapshot in `dir`, if any.
    pub fn open(dir: &Path) -> Result<Self, SnapshotLoadError> {
        let path = dir.join(SNAPSHOT_FILE);
        let (image, last_applied, membership, snapshot) = match std::fs::read(&path) {
            Ok(bytes) => {
                let invalid = |source| SnapshotLoadError::Invalid {
                    path: path.clone(),
                    source,
                };
                let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(invalid)?;
                let data = serde_json::to_vec(&file.image).map_err(invalid)?;
                (
                    file.image,
                    file.meta.last_log_id,
                    file.meta.last_membership.clone(),
                    Some((file.meta, data)),
                )
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                (MetadataImage::empty(), None, StoredMembership::default(), None)
            }
            Err(source) => return Err(SnapshotLoadError::Read { path, source }),
        };
        let (published, _) = watch::channel(Arc::new(image.clone()));
        Ok(StateMachine {
            state: Arc::new(Mutex::new(State {
                image,
                last_applied,
                membership,
                snapshot,
                n_snapshots: 0,
            })),
            dir: dir.to_path_buf(),
            published: Arc::new(published),
        })
    }

    /// Follows the image: the receiver always holds the latest applied one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.published.subscribe()
    }

    fn publish(&self, image: MetadataImage) {
        self.published.send_replace(Arc::new(image));
    }

    fn save_snapshot(&self, meta: &SnapshotMeta, image: &MetadataImage) -> Result<(), StorageError> {
        let file = SnapshotFile {
            meta: meta.clone(),
            image: image.clone(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|error| snapshot_error(ErrorVerb::Write, error))?;
        write_atomically(&self.dir.join(SNAPSHOT_FILE), &bytes)
            .map_err(|error| snapshot_error(ErrorVerb::Write, error))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (meta, image) = {
            let mut state = self.state.lock();
            state.n_snapshots += 1;
            let snapshot_id = format!(
                "{}-{}",
                state.last_applied.map_or(0, |log_id| log_id.index),
                state.n_snapshots
            );
            let meta = SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
                snapshot_id,
            };
            (meta, state.image.clone())
        };
        self.save_snapshot(&meta, &image)?;
        let data = serde_json::to_vec(&image).map_err(|error| snapshot_error(ErrorVerb::Write, error))?;
        self.state.lock().snapshot = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.state.lock();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut responses = Vec::new();
        let image = {
            let mut state = self.state.lock();
            for entry in entries {
                let offset = entry.log_id.index as i64;
                match entry.payload {
                    EntryPayload::Blank => state.image.apply_batch(offset, &[]),
                    EntryPayload::Normal(MetadataBatch(records)) => state.image.apply_batch(offset, &records),
                    EntryPayload::Membership(membership) => {
                        state.membership = StoredMembership::new(Some(entry.log_id), membership);
                        state.image.apply_batch(offset, &[]);
                    }
                }
                state.last_applied = Some(entry.log_id);
                responses.push(());
            }
            state.image.clone()
        };
        self.publish(image);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let image: MetadataImage =
            serde_json::from_slice(&data).map_err(|error| snapshot_error(ErrorVerb::Read, error))?;
        self.save_snapshot(meta, &image)?;
        {
            let mut state = self.state.lock();
            state.image = image.clone();
            state.last_applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.snapshot = Some((meta.clone(), data));
        }
        self.publish(image);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let state = self.state.lock();
        Ok(state.snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}
