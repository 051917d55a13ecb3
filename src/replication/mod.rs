//! A partition as the broker serves it: its log plus leader epoch, replicas, ISR and
//! high watermark, and the durability rules of acks and flushing.

pub mod partition;
pub mod producer_state;

pub use partition::Partition;
