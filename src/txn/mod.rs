//! Transactions (exactly-once), built as the group coordinator is: a pure state machine
//! (`state.rs`), the records of `__transaction_state` (`log_format.rs`), the table of
//! transactional ids (`table.rs`), and the coordinator that owns their IO
//! (`coordinator.rs`: state-log writes and loads, markers, timers; `markers.rs`: its
//! inter-broker requests and the replay of a state-log partition).

pub mod coordinator;
pub mod log_format;
mod markers;
pub mod state;
pub mod table;

pub use coordinator::{TxnCoordinator, TxnHost};
