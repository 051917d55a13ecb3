//! A partition as the broker serves it: its log plus leader epoch, replicas, ISR and
//! high watermark, and the durability rules of acks and flushing.

pub mod delete_records;
pub mod fetcher;
pub mod flush;
pub mod follower_session;
pub mod isr;
pub mod manager;
pub mod markers;
pub mod partition;
pub mod read_replica;
pub mod replica;
pub mod throttle;

pub use manager::ReplicaManager;
pub use partition::Partition;
