//! Topic administration from a broker: requests are checked against the broker's
//! config (defaults, config keys and values), then forwarded to the active controller,
//! which plans and commits them through the quorum (Kafka's forwarding, KIP-590). The
//! broker answers only after the change is committed and visible in its own image.

use super::{AUTO_CREATE_TIMEOUT, Broker};
use crate::cluster::commands::{CommandError, NewTopic};
use crate::common::ErrorCode;
use crate::config::{ConfigError, topic_config_def, validate_value};
use crate::controller::rpc::{ControllerError, ControllerReply, ControllerRequest};
use crate::log::LogError;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why a topic operation was refused; `api::error_code` maps each to a Kafka code.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("topic `{0}` already exists")]
    AlreadyExists(String),
    #[error("unknown topic `{0}`")]
    Unknown(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    /// No placement fits the brokers' capacity.
    #[error("{0}")]
    PolicyViolation(String),
    /// No active controller committed the change in time.
    #[error("{0}")]
    Timeout(String),
    #[error(transparent)]
    Log(#[from] LogError),
}

impl TopicError {
    /// Its Kafka error code.
    pub fn code(&self) -> i16 {
        use kafka_protocol::ResponseError;
        let error = self;
        match error {
            TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists.code(),
            TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition.code(),
            TopicError::InvalidName(_) => ResponseError::InvalidTopicException.code(),
            TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions.code(),
            TopicError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor.code(),
            TopicError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment.code(),
            TopicError::PolicyViolation(_) => ResponseError::PolicyViolation.code(),
            TopicError::InvalidConfig(_) => ResponseError::InvalidConfig.code(),
            TopicError::Timeout(_) => ResponseError::RequestTimedOut.code(),
            TopicError::Log(error) => error.code(),
        }
    }
}

impl From<ControllerError> for TopicError {
    fn from(error: ControllerError) -> Self {
        match error {
            ControllerError::Command(CommandError::TopicAlreadyExists(name)) => {
                TopicError::AlreadyExists(name)
            }
            ControllerError::Command(CommandError::UnknownTopic(name)) => TopicError::Unknown(name),
            ControllerError::Command(CommandError::InvalidTopic(message)) => TopicError::InvalidName(message),
            ControllerError::Command(CommandError::InvalidPartitions(message)) => {
                TopicError::InvalidPartitions(message)
            }
            ControllerError::Command(CommandError::InvalidReplicationFactor(message)) => {
                TopicError::InvalidReplicationFactor(message)
            }
            ControllerError::Command(CommandError::InvalidReplicaAssignment(message)) => {
                TopicError::InvalidReplicaAssignment(message)
            }
            ControllerError::Command(CommandError::PolicyViolation(message)) => {
                TopicError::PolicyViolation(message)
            }
            other @ (ControllerError::Command(
                CommandError::StaleBrokerEpoch { .. }
                | CommandError::FencedLeaderEpoch { .. }
                | CommandError::InvalidUpdateVersion { .. }
                | CommandError::IneligibleReplica(_)
                | CommandError::ResourceNotFound(_),
            )
            | ControllerError::NotController { .. }
            | ControllerError::Unavailable(_)) => TopicError::Timeout(other.to_string()),
        }
    }
}

/// A created (or, with validate_only, checked) topic as CreateTopics reports it.
#[derive(Debug, Clone)]
pub struct CreatedTopic {
    pub topic_id: uuid::Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

impl Broker {
    /// The partition count of internal topic `name`, creating it with these settings on
    /// first use (or waiting until this broker sees it, when another created it). The
    /// error is the Kafka code to answer (COORDINATOR_NOT_AVAILABLE).
    pub(crate) async fn internal_topic_partitions(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<i32, ErrorCode> {
        if let Some(topic) = self.topic(name) {
            return Ok(topic.n_partitions());
        }
        let created = self
            .create_topic(
                name,
                partitions,
                replication_factor,
                None,
                configs,
                false,
                AUTO_CREATE_TIMEOUT,
            )
            .await;
        match created {
            Ok(topic) => Ok(topic.partitions),
            Err(TopicError::AlreadyExists(_)) => {
                self.wait_for_image(AUTO_CREATE_TIMEOUT, |image| image.topic(name).is_some())
                    .await;
                self.topic(name)
                    .map(|topic| topic.n_partitions())
                    .ok_or(ErrorCode::COORDINATOR_NOT_AVAILABLE)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot create {name}");
                Err(ErrorCode::COORDINATOR_NOT_AVAILABLE)
            }
        }
    }

    /// Checks topic config overrides; the error names the bad key.
    pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (key, value) in configs {
            let config = topic_config_def(key).ok_or_else(|| ConfigError::UnknownKey { key: key.clone() })?;
            validate_value(config, value)?;
        }
        Ok(())
    }

    /// Creates a topic (or only checks it when `validate_only`). `replication_factor`
    /// and `partitions` of -1 take the broker defaults; `assignments` place replicas by
    /// hand instead.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignments: Option<Vec<Vec<i32>>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        timeout: Duration,
    ) -> Result<CreatedTopic, TopicError> {
        let partitions = if partitions == -1 && assignments.is_none() {
            self.config.num_partitions
        } else {
            partitions
        };
        let replication_factor = if replication_factor == -1 && assignments.is_none() {
            self.config.default_replication_factor
        } else {
            replication_factor
        };
        Self::validate_topic_configs(&configs)?;
        let (partitions, replication_factor) = match &assignments {
            Some(assignments) => (
                assignments.len() as i32,
                assignments.first().map_or(0, |replicas| replicas.len() as i16),
            ),
            None => (partitions, replication_factor),
        };
        let topic = NewTopic {
            name: name.to_string(),
            partitions,
            replication_factor,
            assignments,
            configs: configs.clone(),
        };
        let request = ControllerRequest::CreateTopic { topic, validate_only };
        match self.controller_request(request, timeout).await? {
            ControllerReply::TopicCreated { topic_id, offset } => {
                if !validate_only {
                    self.wait_for_offset(offset, timeout).await;
                    tracing::info!(topic = name, partitions, replication_factor, "created topic");
                }
                Ok(CreatedTopic {
                    topic_id,
                    partitions,
                    replication_factor,
                    configs,
                })
            }
            other => Err(TopicError::Timeout(format!(
                "unexpected controller answer {other:?}"
            ))),
        }
    }

    /// Waits for a committed change to reach this broker's partitions.
    async fn committed(&self, reply: ControllerReply, timeout: Duration) -> Result<(), TopicError> {
        match reply {
            ControllerReply::Committed { offset } => {
                self.wait_for_offset(offset, timeout).await;
                Ok(())
            }
            other => Err(TopicError::Timeout(format!(
                "unexpected controller answer {other:?}"
            ))),
        }
    }

    pub async fn delete_topic(&self, name: &str, timeout: Duration) -> Result<(), TopicError> {
        if Self::is_internal_topic(name) {
            return Err(TopicError::InvalidName(format!(
                "internal topic {name} cannot be deleted"
            )));
        }
        let request = ControllerRequest::DeleteTopic {
            name: name.to_string(),
        };
        let reply = self.controller_request(request, timeout).await?;
        self.committed(reply, timeout).await?;
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Raises a topic's partition count (never lowers it).
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
        timeout: Duration,
    ) -> Result<(), TopicError> {
        let request = ControllerRequest::CreatePartitions {
            name: name.to_string(),
            count,
            assignments,
            validate_only,
        };
        let reply = self.controller_request(request, timeout).await?;
        self.committed(reply, timeout).await
    }

    /// Replaces a topic's config overrides; the publisher applies them to the logs.
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        timeout: Duration,
    ) -> Result<(), TopicError> {
        Self::validate_topic_configs(&configs)?;
        let request = ControllerRequest::SetTopicConfigs {
            name: name.to_string(),
            configs,
            validate_only,
        };
        let reply = self.controller_request(request, timeout).await?;
        self.committed(reply, timeout).await
    }

    /// Replaces a group's config overrides (IncrementalAlterConfigs and AlterConfigs on
    /// a GROUP resource), or only checks them.
    pub async fn set_group_configs(
        &self,
        group_id: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        timeout: Duration,
    ) -> Result<(), TopicError> {
        for (key, value) in &configs {
            let config = crate::config::group_config_def(key)
                .ok_or_else(|| ConfigError::UnknownKey { key: key.clone() })?;
            validate_value(config, value)?;
        }
        let request = ControllerRequest::SetGroupConfigs {
            group_id: group_id.to_string(),
            configs,
            validate_only,
        };
        let reply = self.controller_request(request, timeout).await?;
        self.committed(reply, timeout).await
    }

    /// Sets a BROKER resource's dynamic configs (KIP-226): `broker` is a broker id or ""
    /// for the cluster-wide default; every key must be a dynamic broker config.
    pub async fn set_broker_configs(
        &self,
        broker: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        timeout: Duration,
    ) -> Result<(), TopicError> {
        crate::config::dynamic::validate(&configs)?;
        let request = ControllerRequest::SetBrokerConfigs {
            broker: broker.to_string(),
            configs,
            validate_only,
        };
        let reply = self.controller_request(request, timeout).await?;
        self.committed(reply, timeout).await
    }

    /// Alters client quotas (KIP-546) through the active controller: each entity's keys
    /// set (Some) or removed (None). Checked by the caller.
    pub async fn alter_client_quotas(
        &self,
        changes: Vec<(crate::cluster::quotas::QuotaEntity, BTreeMap<String, Option<f64>>)>,
        validate_only: bool,
        timeout: Duration,
    ) -> Result<(), TopicError> {
        let request = ControllerRequest::AlterClientQuotas {
            changes,
            validate_only,
        };
        let reply = self.controller_request(request, timeout).await?;
        self.committed(reply, timeout).await
    }
}
