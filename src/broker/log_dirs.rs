//! Moving a local replica between this broker's log dirs (AlterReplicaLogDirs): pass 1
//! copies the sealed segments on a blocking thread without the partition's lock; pass 2,
//! under the lock, the tail and the swap (`log::partition_log::move_dir`).

use super::Broker;
use crate::log::TopicPartition;
use crate::log::partition_log::move_dir;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a replica was not moved; the handler maps each to a Kafka code.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("`{0}` is not one of this broker's log dirs")]
    UnknownLogDir(String),
    #[error("this broker has no replica of {0}")]
    NoReplica(TopicPartition),
    #[error(transparent)]
    Storage(#[from] crate::log::LogError),
}

impl Broker {
    /// The configured log dir that `path` names (as given, or after resolving links).
    pub fn log_dir_named(&self, path: &str) -> Option<PathBuf> {
        let wanted = Path::new(path);
        let resolved = std::fs::canonicalize(wanted).ok();
        self.replicas
            .logs()
            .log_dirs()
            .iter()
            .find(|dir| {
                dir.as_path() == wanted || (resolved.is_some() && std::fs::canonicalize(dir).ok() == resolved)
            })
            .cloned()
    }

    /// Moves this broker's replica of `topic_partition` into log dir `path`; nothing to
    /// do when it is there already.
    pub async fn move_replica(
        self: &Arc<Self>,
        topic_partition: &TopicPartition,
        path: &str,
    ) -> Result<(), MoveError> {
        let dir = self
            .log_dir_named(path)
            .ok_or_else(|| MoveError::UnknownLogDir(path.to_string()))?;
        let partition = self
            .replicas
            .partition(topic_partition)
            .ok_or_else(|| MoveError::NoReplica(topic_partition.clone()))?;
        let (current, (sealed, rewrites)) = partition.with_log(|log| {
            (
                log.dir().parent().map(Path::to_path_buf),
                log.sealed_segment_files(),
            )
        });
        if current.as_deref() == Some(dir.as_path()) {
            return Ok(());
        }
        let name = topic_partition.to_string();
        let future = dir.join(format!(
            "{name}.{}{}",
            uuid::Uuid::new_v4().simple(),
            move_dir::FUTURE_SUFFIX
        ));
        let target = dir.join(&name);
        let copy_to = future.clone();
        let copied = tokio::task::spawn_blocking(move || move_dir::copy_sealed(&sealed, &copy_to))
            .await
            .map_err(|error| crate::log::LogError::io(&future, "copy task", std::io::Error::other(error)))?;
        let copied = match copied {
            Ok(copied) => copied,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&future);
                return Err(error.into());
            }
        };
        let now = crate::common::now_ms();
        let moving = partition.clone();
        let finish_future = future.clone();
        tokio::task::spawn_blocking(move || {
            moving.with_log(|log| log.finish_move(&finish_future, &target, &copied, rewrites, now))
        })
        .await
        .map_err(|error| crate::log::LogError::io(&future, "move task", std::io::Error::other(error)))??;
        tracing::info!(%topic_partition, log_dir = %dir.display(), "replica moved to another log dir");
        let broker = self.clone();
        let _ = tokio::task::spawn_blocking(move || broker.replicas.write_checkpoints()).await;
        Ok(())
    }
}
