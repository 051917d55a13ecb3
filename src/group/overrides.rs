//! A group's config overrides (a GROUP config resource, kept in the metadata log), as
//! the coordinators and share-partitions apply them over the broker's group settings.
//! Values were validated when they were set; one that does not parse is ignored.

use std::collections::BTreeMap;

/// Where a share group starts reading a partition it has no state for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShareOffsetReset {
    #[default]
    Latest,
    Earliest,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupOverrides {
    /// `consumer.session.timeout.ms`
    pub consumer_session_timeout_ms: Option<i32>,
    /// `consumer.heartbeat.interval.ms`
    pub consumer_heartbeat_interval_ms: Option<i32>,
    /// `share.session.timeout.ms`
    pub share_session_timeout_ms: Option<i32>,
    /// `share.heartbeat.interval.ms`
    pub share_heartbeat_interval_ms: Option<i32>,
    /// `share.record.lock.duration.ms`
    pub share_record_lock_duration_ms: Option<i64>,
    /// `share.auto.offset.reset`
    pub share_auto_offset_reset: ShareOffsetReset,
    /// `share.isolation.level=read_committed`
    pub share_read_committed: bool,
}

impl GroupOverrides {
    pub fn parse(configs: Option<&BTreeMap<String, String>>) -> Self {
        let Some(configs) = configs else {
            return GroupOverrides::default();
        };
        let int = |name: &str| {
            configs
                .get(name)
                .and_then(|value| value.trim().parse::<i32>().ok())
        };
        GroupOverrides {
            consumer_session_timeout_ms: int("consumer.session.timeout.ms"),
            consumer_heartbeat_interval_ms: int("consumer.heartbeat.interval.ms"),
            share_session_timeout_ms: int("share.session.timeout.ms"),
            share_heartbeat_interval_ms: int("share.heartbeat.interval.ms"),
            share_record_lock_duration_ms: int("share.record.lock.duration.ms").map(i64::from),
            share_auto_offset_reset: match configs.get("share.auto.offset.reset").map(String::as_str) {
                Some("earliest") => ShareOffsetReset::Earliest,
                _ => ShareOffsetReset::Latest,
            },
            share_read_committed: configs.get("share.isolation.level").map(String::as_str)
                == Some("read_committed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_and_unset_ones_stay_none() {
        let configs = BTreeMap::from([
            ("consumer.session.timeout.ms".to_string(), "12000".to_string()),
            ("share.auto.offset.reset".to_string(), "earliest".to_string()),
            (
                "share.record.lock.duration.ms".to_string(),
                "nonsense".to_string(),
            ),
            ("share.isolation.level".to_string(), "read_committed".to_string()),
        ]);
        let overrides = GroupOverrides::parse(Some(&configs));
        assert_eq!(overrides.consumer_session_timeout_ms, Some(12000));
        assert_eq!(overrides.consumer_heartbeat_interval_ms, None);
        assert_eq!(overrides.share_record_lock_duration_ms, None);
        assert_eq!(overrides.share_auto_offset_reset, ShareOffsetReset::Earliest);
        assert!(overrides.share_read_committed);
        assert_eq!(GroupOverrides::parse(None), GroupOverrides::default());
    }
}
