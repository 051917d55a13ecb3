//! Client quotas as the broker enforces them (KIP-13, KIP-55, KIP-124, KIP-599): each
//! request's bytes, handling time or partition mutations are recorded against the
//! quota that applies to its user and client id (`cluster::quotas`, from the metadata
//! image), measured with Kafka's sampled rate (`common::rate`, `quota.window.num`
//! windows of `quota.window.size.seconds`). A client over its quota gets the throttle
//! time in its response and its connection is muted for that long (KIP-219): the
//! server reads no further request from it until then.

use super::Broker;
use crate::cluster::quotas::{self, QuotaEntity};
use crate::common::now_ms;
use crate::common::rate::Rate;
use parking_lot::Mutex;
use std::collections::HashMap;

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// Bytes produced a second (`producer_byte_rate`).
    Produce,
    /// Bytes fetched a second by consumers (`consumer_byte_rate`).
    Fetch,
    /// Request handling time, as a percentage of one thread (`request_percentage`).
    Request,
    /// Partitions created or deleted a second (`controller_mutation_rate`).
    ControllerMutation,
}

impl QuotaKind {
    fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => quotas::PRODUCER_BYTE_RATE,
            QuotaKind::Fetch => quotas::CONSUMER_BYTE_RATE,
            QuotaKind::Request => quotas::REQUEST_PERCENTAGE,
            QuotaKind::ControllerMutation => quotas::CONTROLLER_MUTATION_RATE,
        }
    }

    /// The label of its throttle metrics.
    pub fn label(self) -> &'static str {
        match self {
            QuotaKind::Produce => "produce",
            QuotaKind::Fetch => "fetch",
            QuotaKind::Request => "request",
            QuotaKind::ControllerMutation => "controller_mutation",
        }
    }
}

/// The rate of each client (or group of clients sharing a quota entity) per quota.
pub struct ClientQuotas {
    samples: usize,
    window_ms: i64,
    sensors: Mutex<HashMap<(QuotaKind, String, String), Rate>>,
}

/// Kafka's user name of a principal (`User:alice` is `alice`).
fn user_of(principal: &str) -> &str {
    principal.strip_prefix("User:").unwrap_or(principal)
}

/// The sensor a quota entity measures: one per user and client id the entity names
/// (or defaults), so that clients that share only a default quota are measured apart,
/// and all clients of a user quota together.
fn sensor_key(entity: &QuotaEntity, user: &str, client_id: &str) -> (String, String) {
    let has = |kind: &str| entity.iter().any(|(part, _)| part == kind);
    (
        if has(quotas::USER) {
            user.to_string()
        } else {
            String::new()
        },
        if has(quotas::CLIENT_ID) {
            client_id.to_string()
        } else {
            String::new()
        },
    )
}

impl ClientQuotas {
    pub fn new(samples: usize, window_ms: i64) -> Self {
        ClientQuotas {
            samples,
            window_ms,
            sensors: Mutex::new(HashMap::new()),
        }
    }

    /// Records `value` for the client and returns how long it is throttled (0 when it
    /// has no quota of this kind or is within it).
    pub fn record(
        &self,
        all: &quotas::ClientQuotas,
        kind: QuotaKind,
        principal: &str,
        client_id: &str,
        value: f64,
        now_ms: i64,
    ) -> i64 {
        if all.is_empty() {
            return 0;
        }
        let user = user_of(principal);
        let Some((quota, entity)) = all.quota_for(user, client_id, kind.key()) else {
            return 0;
        };
        let (user, client) = sensor_key(&entity, user, client_id);
        let mut sensors = self.sensors.lock();
        if sensors.len() > 100_000 {
            // Idle sensors of vanished clients: start over rather than grow without bound.
            sensors.clear();
        }
        let rate = sensors
            .entry((kind, user, client))
            .or_insert_with(|| Rate::new(self.samples, self.window_ms));
        rate.record(value, now_ms);
        rate.throttle_ms(quota, now_ms)
    }

    /// Whether the client is over its quota now, without recording anything (KIP-599's
    /// check before a mutation is let through).
    pub fn exceeded(
        &self,
        all: &quotas::ClientQuotas,
        kind: QuotaKind,
        principal: &str,
        client_id: &str,
    ) -> i64 {
        let user = user_of(principal);
        let Some((quota, entity)) = all.quota_for(user, client_id, kind.key()) else {
            return 0;
        };
        let (user, client) = sensor_key(&entity, user, client_id);
        self.sensors
            .lock()
            .get_mut(&(kind, user, client))
            .map_or(0, |rate| rate.throttle_ms(quota, now_ms()))
    }
}

impl Broker {
    /// Records a request's `value` against the client's quota of `kind`; the throttle
    /// time in ms (also counted in `/metrics`).
    pub fn record_quota(&self, kind: QuotaKind, principal: &str, client_id: &str, value: f64) -> i64 {
        let image = self.image();
        let throttle = self
            .quotas
            .record(&image.client_quotas, kind, principal, client_id, value, now_ms());
        if throttle > 0 {
            self.metrics.throttled(kind.label(), throttle as u64);
        }
        throttle
    }

    /// The throttle time a client over its quota of `kind` has now (nothing recorded).
    pub fn quota_exceeded(&self, kind: QuotaKind, principal: &str, client_id: &str) -> i64 {
        let image = self.image();
        self.quotas
            .exceeded(&image.client_quotas, kind, principal, client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::quotas::QuotaValue;
    use std::collections::BTreeMap;

    fn with_quota(entity: &[(&str, Option<&str>)], key: &str, value: f64) -> quotas::ClientQuotas {
        let mut all = quotas::ClientQuotas::default();
        let entity = entity
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect();
        all.set(&entity, &BTreeMap::from([(key.to_string(), QuotaValue(value))]));
        all
    }

    #[test]
    fn a_client_over_its_byte_rate_is_throttled_and_others_are_not() {
        let all = with_quota(
            &[(quotas::CLIENT_ID, Some("app"))],
            quotas::PRODUCER_BYTE_RATE,
            1000.0,
        );
        let quotas = ClientQuotas::new(2, 1000);
        assert_eq!(
            quotas.record(&all, QuotaKind::Produce, "User:ANONYMOUS", "app", 500.0, 0),
            0
        );
        let throttle = quotas.record(&all, QuotaKind::Produce, "User:ANONYMOUS", "app", 2500.0, 0);
        assert_eq!(throttle, 2000, "3000 bytes in the first second against 1000/s");
        assert_eq!(
            quotas.record(&all, QuotaKind::Produce, "User:ANONYMOUS", "other", 1e9, 10),
            0
        );
        assert_eq!(
            quotas.record(&all, QuotaKind::Fetch, "User:ANONYMOUS", "app", 1e9, 10),
            0
        );
    }

    #[test]
    fn a_default_quota_measures_each_client_apart_and_a_user_quota_all_together() {
        let all = with_quota(&[(quotas::CLIENT_ID, None)], quotas::PRODUCER_BYTE_RATE, 1000.0);
        let quotas = ClientQuotas::new(2, 1000);
        assert_eq!(
            quotas.record(&all, QuotaKind::Produce, "User:a", "one", 900.0, 0),
            0
        );
        assert_eq!(
            quotas.record(&all, QuotaKind::Produce, "User:a", "two", 900.0, 0),
            0
        );
        let user = with_quota(&[(quotas::USER, Some("a"))], quotas::PRODUCER_BYTE_RATE, 1000.0);
        let shared = ClientQuotas::new(2, 1000);
        assert_eq!(
            shared.record(&user, QuotaKind::Produce, "User:a", "one", 900.0, 0),
            0
        );
        assert!(shared.record(&user, QuotaKind::Produce, "User:a", "two", 900.0, 0) > 0);
    }
}
