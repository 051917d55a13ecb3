//! The values the group state machine works with: members, join and sync requests and
//! results, and the replies it hands back for waiting members.

use crate::common::ErrorCode;
use bytes::Bytes;

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// Supported protocols in preference order: (name, metadata).
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat_ms: i64,
    pub(super) awaiting_join: bool,
    pub(super) awaiting_sync: bool,
    /// Joined but not yet answered once (kept longer while waiting).
    pub(super) is_new: bool,
}

impl Member {
    /// The metadata this member gave for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member must first get its id (MEMBER_ID_REQUIRED).
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JoinResult {
    pub error: ErrorCode,
    pub member_id: String,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: String,
    /// Only the leader gets the members: (member id, group instance id, metadata).
    pub members: Vec<(String, Option<String>, Bytes)>,
    pub skip_assignment: bool,
}

impl JoinResult {
    pub(super) fn error(error: ErrorCode, member_id: &str) -> Self {
        JoinResult {
            error,
            member_id: member_id.to_string(),
            generation_id: -1,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncResult {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub(super) fn error(error: ErrorCode) -> Self {
        SyncResult {
            error,
            ..Default::default()
        }
    }
}

/// An answer to deliver to a waiting member.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Join(String, JoinResult),
    Sync(String, SyncResult),
}

/// What a join or sync call returns to its caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer<T> {
    Now(T),
    /// The caller waits for a [`Reply`] for this member id.
    Later(String),
}
