//! The group coordinator's KIP-932 half: runs each share group's membership on
//! ShareGroupHeartbeat. A share group's membership is kept in memory only: after a
//! coordinator failover its members get UNKNOWN_MEMBER_ID and join again (their
//! records' states live with the share-partitions, not here).

use super::consumer::TopicsView;
use super::coordinator::{GroupCoordinator, GroupEntry};
use super::share::group::{ShareAnswer, ShareGroup, ShareHeartbeat};
use super::state::GroupState;
use crate::common::ErrorCode;
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use uuid::Uuid;

impl GroupCoordinator {
    /// ShareGroupHeartbeat for `group_id`; a classic or consumer group of that id
    /// answers GROUP_ID_NOT_FOUND.
    pub fn share_heartbeat(
        &self,
        group_id: &str,
        request: ShareHeartbeat,
        topics: &TopicsView,
        session_timeout_ms: i32,
        now_ms: i64,
    ) -> ShareAnswer {
        let mut groups = self.groups.lock();
        let entry = groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupEntry::new(group_id, now_ms));
        let classic_in_use = !entry.group.members.is_empty() || entry.group.state != GroupState::Empty;
        let other_kind = entry.share.is_none()
            && (entry.consumer.is_some() || classic_in_use || !entry.offsets.is_empty());
        if other_kind {
            return ShareAnswer {
                error: ErrorCode::of(ResponseError::GroupIdNotFound),
                message: Some(format!("Group {group_id} is not a share group.")),
                member_id: request.member_id,
                member_epoch: request.member_epoch,
                assignment: None,
            };
        }
        let leaving = (request.member_epoch == -1).then(|| request.member_id.clone());
        let share = entry.share.get_or_insert_with(|| ShareGroup::new(group_id));
        let answer = share.heartbeat(request, topics, session_timeout_ms, now_ms);
        if let Some(member_id) = leaving {
            self.shares.release_member(group_id, &member_id);
        }
        answer
    }

    /// The topics whose share-partitions a share group may have state for, and whether
    /// it has members; GROUP_ID_NOT_FOUND when `group_id` is not a share group.
    pub fn share_group_topics(&self, group_id: &str) -> Result<(BTreeMap<Uuid, i32>, bool), ErrorCode> {
        let groups = self.groups.lock();
        let share = groups
            .get(group_id)
            .and_then(|entry| entry.share.as_ref())
            .ok_or(ErrorCode::of(ResponseError::GroupIdNotFound))?;
        Ok((share.known_topics.clone(), !share.members.is_empty()))
    }

    /// ShareGroupDescribe's view of a share group; None when it is not one.
    pub fn describe_share(&self, group_id: &str) -> Option<ShareGroup> {
        self.groups.lock().get(group_id)?.share.clone()
    }
}
