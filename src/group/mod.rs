//! Consumer groups: classic ones (the pure state machine), KIP-848 consumer groups
//! (`consumer/`) and KIP-932 share groups (`share/`), the coordinator that runs them,
//! and the durable offsets and group records in `__consumer_offsets`.

pub mod consumer;
pub mod consumer_coordinator;
pub mod coordinator;
pub mod host;
pub mod led;
pub mod log_writer;
pub mod member;
pub mod offsets;
pub mod overrides;
mod replay;
mod retention;
pub mod share;
pub mod share_coordinator;
pub mod share_state;
pub mod state;

pub use coordinator::GroupCoordinator;
pub use host::OffsetsLog;
