//! The durable Raft log and vote of the metadata quorum, in a redb database
//! (`<metadata dir>/__cluster_metadata-0/raft.redb`).
//!
//! Layout: table `log` maps a Raft index (u64) to the JSON of its entry; table `state`
//! holds `vote`, `committed` and `last_purged` (JSON of openraft's types). Every write is
//! one redb transaction committed with `Durability::Immediate`, which fsyncs before the
//! commit returns: a vote or an append is acknowledged only once it is on disk. redb
//! is crash-safe (copy-on-write pages with checksummed commit slots), so after a crash
//! the database is exactly as of the last completed commit.

// The error type is openraft's `StorageError`, which its storage traits dictate.
#![allow(clippy::result_large_err)]

use super::types::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote, storage_error};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, RaftLogReader};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");

/// The log store; clones share one database (openraft takes a separate reader).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<redb::Database>,
}

fn logs_error(verb: ErrorVerb, error: impl std::fmt::Display) -> StorageError {
    storage_error(ErrorSubject::Logs, verb, error)
}

impl LogStore {
    pub fn open(path: &Path) -> Result<Self, redb::DatabaseError> {
        let db = redb::Database::create(path)?;
        Ok(LogStore { db: Arc::new(db) })
    }

    /// Runs `f` in one write transaction and commits it durably.
    fn write<R>(
        &self,
        subject: ErrorSubject<NodeId>,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<R, redb::Error>,
    ) -> Result<R, StorageError> {
        let mut transaction = self
            .db
            .begin_write()
            .map_err(|error| storage_error(subject.clone(), ErrorVerb::Write, error))?;
        // redb's default, said here because the quorum's safety rests on it.
        transaction
            .set_durability(redb::Durability::Immediate)
            .map_err(|error| storage_error(subject.clone(), ErrorVerb::Write, error))?;
        let result =
            f(&transaction).map_err(|error| storage_error(subject.clone(), ErrorVerb::Write, error))?;
        transaction
            .commit()
            .map_err(|error| storage_error(subject, ErrorVerb::Write, error))?;
        Ok(result)
    }

    fn read_state<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        let read = |error: &dyn std::fmt::Display| storage_error(ErrorSubject::Store, ErrorVerb::Read, error);
        let transaction = self.db.begin_read().map_err(|error| read(&error))?;
        let table = match transaction.open_table(STATE) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(read(&error)),
        };
        match table.get(key).map_err(|error| read(&error))? {
            Some(value) => serde_json::from_slice(value.value())
                .map(Some)
                .map_err(|error| read(&error)),
            None => Ok(None),
        }
    }

    fn write_state<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(|error| logs_error(ErrorVerb::Write, error))?;
        self.write(ErrorSubject::Store, |transaction| {
            transaction.open_table(STATE)?.insert(key, bytes.as_slice())?;
            Ok(())
        })
    }

    fn last_entry(&self) -> Result<Option<Entry>, StorageError> {
        let read = |error: &dyn std::fmt::Display| logs_error(ErrorVerb::Read, error);
        let transaction = self.db.begin_read().map_err(|error| read(&error))?;
        let table = match transaction.open_table(LOG) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(read(&error)),
        };
        match table.last().map_err(|error| read(&error))? {
            Some((_, value)) => serde_json::from_slice(value.value())
                .map(Some)
                .map_err(|error| read(&error)),
            None => Ok(None),
        }
    }

    /// Entries with indexes in `range`, in order.
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>, StorageError> {
        let read = |error: &dyn std::fmt::Display| logs_error(ErrorVerb::Read, error);
        let transaction = self.db.begin_read().map_err(|error| read(&error))?;
        let table = match transaction.open_table(LOG) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(read(&error)),
        };
        let mut entries = Vec::new();
        for item in table.range(range).map_err(|error| read(&error))? {
            let (_, value) = item.map_err(|error| read(&error))?;
            entries.push(serde_json::from_slice(value.value()).map_err(|error| read(&error))?);
        }
        Ok(entries)
    }

    /// The last committed log id, as saved (None before any commit was seen).
    pub fn committed(&self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_state::<Option<LogId>>("committed")?.flatten())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.entries(range)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_state::<Option<LogId>>("last_purged")?.flatten();
        let last_log_id = self
            .last_entry()?
            .map(|entry| entry.log_id)
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_state("vote", vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_state("vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.write_state("committed", &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.committed()
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut encoded = Vec::new();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(|error| logs_error(ErrorVerb::Write, error))?;
            encoded.push((entry.log_id.index, bytes));
        }
        let result = self.write(ErrorSubject::Logs, |transaction| {
            let mut table = transaction.open_table(LOG)?;
            for (index, bytes) in &encoded {
                table.insert(*index, bytes.as_slice())?;
            }
            Ok(())
        });
        // The commit above fsynced (or failed): tell openraft either way.
        callback.log_io_completed(
            result
                .as_ref()
                .map(|_| ())
                .map_err(|error| std::io::Error::other(error.to_string())),
        );
        result
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write(ErrorSubject::Logs, |transaction| {
            let mut table = transaction.open_table(LOG)?;
            table.retain_in(log_id.index.., |_, _| false)?;
            Ok(())
        })
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let bytes =
            serde_json::to_vec(&Some(log_id)).map_err(|error| logs_error(ErrorVerb::Delete, error))?;
        self.write(ErrorSubject::Logs, |transaction| {
            transaction
                .open_table(STATE)?
                .insert("last_purged", bytes.as_slice())?;
            let mut table = transaction.open_table(LOG)?;
            table.retain_in(..=log_id.index, |_, _| false)?;
            Ok(())
        })
    }
}
