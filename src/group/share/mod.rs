//! KIP-932 share groups: the membership state machine (`group.rs`), each
//! share-partition's record states (`partition.rs`) and the table of the
//! share-partitions this broker leads (`manager.rs`); their persisted state
//! (`snapshot.rs`) and the share coordinator's table of it (`coordinator.rs`); which
//! records a read_committed share group never sees (`isolation.rs`).

pub mod coordinator;
pub mod group;
pub mod isolation;
pub mod manager;
pub mod partition;
pub mod snapshot;
