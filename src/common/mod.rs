//! The ground floor: what every other module may use and what uses nothing of the
//! crate. The clock, Kafka error codes, files written to survive a power cut.

pub mod clock;
pub mod error_code;
pub mod files;
pub mod log_levels;
pub mod rate;
pub mod topics;

pub use clock::now_ms;
pub use error_code::ErrorCode;
