//! Transactions (exactly-once): the transaction coordinator's state machine (`state.rs`,
//! pure), the records of `__transaction_state` (`log_format.rs`), and the coordinator's
//! in-memory table of transactional ids (`coordinator.rs`). The IO around them (writing
//! the state log, writing markers through partition leaders, loading on leadership,
//! timeouts) is `broker/transactions.rs`.

pub mod coordinator;
pub mod log_format;
pub mod state;

pub use coordinator::{TRANSACTION_STATE_TOPIC, TxnCoordinator};
