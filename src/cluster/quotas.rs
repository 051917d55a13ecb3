//! Client quotas in the metadata image (KIP-13, KIP-55, KIP-124, KIP-546, KIP-599):
//! quota values per entity (a user, a client id, either's default, or a user with a
//! client id), which quota applies to a connection, and the filters of
//! DescribeClientQuotas. Pure.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";

/// The quota keys Kafka defines for users and client ids.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub const QUOTA_KEYS: &[&str] = &[
    PRODUCER_BYTE_RATE,
    CONSUMER_BYTE_RATE,
    REQUEST_PERCENTAGE,
    CONTROLLER_MUTATION_RATE,
];

/// A quota's value (bytes a second, a percentage, mutations a second). Compared by
/// bits, so that an image (which is `Eq`) can hold it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuotaValue(pub f64);

impl PartialEq for QuotaValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for QuotaValue {}

/// An entity: `(entity type, name)` pairs sorted by type; a name of None is that type's
/// default (`<default>`).
pub type QuotaEntity = Vec<(String, Option<String>)>;

/// Every entity's quotas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientQuotas {
    entries: Vec<(QuotaEntity, BTreeMap<String, QuotaValue>)>,
}

/// How a DescribeClientQuotas filter component matches an entity's part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// This name exactly.
    Exact(String),
    /// The type's default.
    Default,
    /// Any name, or the default.
    Any,
}

/// Sorts an entity's parts, the one form the image keeps.
pub fn normalized(mut entity: QuotaEntity) -> QuotaEntity {
    entity.sort();
    entity.dedup_by(|a, b| a.0 == b.0);
    entity
}

impl ClientQuotas {
    /// Replaces `entity`'s quotas; empty removes the entity.
    pub fn set(&mut self, entity: &QuotaEntity, quotas: &BTreeMap<String, QuotaValue>) {
        let entity = normalized(entity.clone());
        self.entries.retain(|(existing, _)| *existing != entity);
        if !quotas.is_empty() {
            self.entries.push((entity, quotas.clone()));
            self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }

    pub fn get(&self, entity: &QuotaEntity) -> Option<&BTreeMap<String, QuotaValue>> {
        let entity = normalized(entity.clone());
        self.entries
            .iter()
            .find(|(existing, _)| *existing == entity)
            .map(|(_, quotas)| quotas)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = &(QuotaEntity, BTreeMap<String, QuotaValue>)> {
        self.entries.iter()
    }

    /// The quota `key` for a connection of `user` with `client_id`, and the entity it
    /// comes from, in Kafka's order (most specific first): user and client id, user and
    /// default client id, user; default user and client id, default user and default
    /// client id, default user; client id; default client id.
    pub fn quota_for(&self, user: &str, client_id: &str, key: &str) -> Option<(f64, QuotaEntity)> {
        let u = |name: Option<&str>| (USER.to_string(), name.map(str::to_string));
        let c = |name: Option<&str>| (CLIENT_ID.to_string(), name.map(str::to_string));
        let order: [QuotaEntity; 8] = [
            vec![c(Some(client_id)), u(Some(user))],
            vec![c(None), u(Some(user))],
            vec![u(Some(user))],
            vec![c(Some(client_id)), u(None)],
            vec![c(None), u(None)],
            vec![u(None)],
            vec![c(Some(client_id))],
            vec![c(None)],
        ];
        order.into_iter().find_map(|entity| {
            let value = self.get(&entity)?.get(key)?.0;
            Some((value, entity))
        })
    }

    /// The entries a DescribeClientQuotas filter selects: every component matches a part
    /// of the entity; with `strict`, the entity has no other parts.
    pub fn matching(
        &self,
        components: &[(String, Match)],
        strict: bool,
    ) -> Vec<&(QuotaEntity, BTreeMap<String, QuotaValue>)> {
        self.entries
            .iter()
            .filter(|(entity, _)| {
                let all_match = components.iter().all(|(entity_type, wanted)| {
                    entity
                        .iter()
                        .find(|(part_type, _)| part_type == entity_type)
                        .is_some_and(|(_, name)| match wanted {
                            Match::Exact(exact) => name.as_deref() == Some(exact.as_str()),
                            Match::Default => name.is_none(),
                            Match::Any => true,
                        })
                });
                all_match && (!strict || entity.len() == components.len())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(parts: &[(&str, Option<&str>)]) -> QuotaEntity {
        parts
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect()
    }

    fn quotas(value: f64) -> BTreeMap<String, QuotaValue> {
        BTreeMap::from([(PRODUCER_BYTE_RATE.to_string(), QuotaValue(value))])
    }

    #[test]
    fn the_most_specific_entity_wins_per_key() {
        let mut all = ClientQuotas::default();
        all.set(&entity(&[(CLIENT_ID, None)]), &quotas(8.0));
        assert_eq!(all.quota_for("alice", "app", PRODUCER_BYTE_RATE).unwrap().0, 8.0);
        all.set(&entity(&[(CLIENT_ID, Some("app"))]), &quotas(7.0));
        assert_eq!(all.quota_for("alice", "app", PRODUCER_BYTE_RATE).unwrap().0, 7.0);
        all.set(&entity(&[(USER, None)]), &quotas(6.0));
        assert_eq!(all.quota_for("alice", "app", PRODUCER_BYTE_RATE).unwrap().0, 6.0);
        all.set(&entity(&[(USER, Some("alice"))]), &quotas(3.0));
        assert_eq!(all.quota_for("alice", "app", PRODUCER_BYTE_RATE).unwrap().0, 3.0);
        // Parts in either order are the same entity.
        all.set(
            &entity(&[(USER, Some("alice")), (CLIENT_ID, Some("app"))]),
            &quotas(1.0),
        );
        assert_eq!(
            all.quota_for("alice", "app", PRODUCER_BYTE_RATE),
            Some((1.0, entity(&[(CLIENT_ID, Some("app")), (USER, Some("alice"))])))
        );
        assert_eq!(all.quota_for("bob", "other", PRODUCER_BYTE_RATE).unwrap().0, 6.0);
        assert_eq!(all.quota_for("alice", "app", CONSUMER_BYTE_RATE), None);
        // Removing an entity falls back to the next.
        all.set(
            &entity(&[(CLIENT_ID, Some("app")), (USER, Some("alice"))]),
            &BTreeMap::new(),
        );
        assert_eq!(all.quota_for("alice", "app", PRODUCER_BYTE_RATE).unwrap().0, 3.0);
    }

    #[test]
    fn describe_filters_match_exact_default_and_any() {
        let mut all = ClientQuotas::default();
        all.set(&entity(&[(CLIENT_ID, Some("a"))]), &quotas(1.0));
        all.set(&entity(&[(CLIENT_ID, None)]), &quotas(2.0));
        all.set(
            &entity(&[(USER, Some("u")), (CLIENT_ID, Some("a"))]),
            &quotas(3.0),
        );
        let exact = all.matching(&[(CLIENT_ID.into(), Match::Exact("a".into()))], false);
        assert_eq!(exact.len(), 2);
        let strict = all.matching(&[(CLIENT_ID.into(), Match::Exact("a".into()))], true);
        assert_eq!(strict.len(), 1);
        assert_eq!(
            all.matching(&[(CLIENT_ID.into(), Match::Default)], false).len(),
            1
        );
        assert_eq!(all.matching(&[(CLIENT_ID.into(), Match::Any)], true).len(), 2);
        assert_eq!(all.matching(&[(USER.into(), Match::Any)], false).len(), 1);
    }
}
