//! KIP-848 consumer groups: the server-side assignors, the member reconciliation,
//! the group state machine and its `__consumer_offsets` records. Pure: the
//! coordinator (`group::consumer_coordinator`) runs it and writes its records.

pub mod assignor;
pub mod member;
pub mod records;
pub mod state;
#[cfg(test)]
mod state_tests;

pub use state::{
    ConsumerGroup, ConsumerGroupConfig, ConsumerGroupState, Heartbeat, HeartbeatAnswer, TopicsView,
};
