//! Transaction coordinator refusals as the error code each request version knows:
//! PRODUCER_FENCED exists only in the versions KIP-588 added it to; older clients get
//! INVALID_PRODUCER_EPOCH, as Kafka answers them.

use crate::common::ErrorCode;
use crate::txn::state::TxnError;
use kafka_protocol::ResponseError;

/// The code for `error` in a response of a request whose versions from
/// `fenced_since` on know PRODUCER_FENCED.
pub fn code(error: TxnError, version: i16, fenced_since: i16) -> ErrorCode {
    match error {
        TxnError::ConcurrentTransactions => ErrorCode::of(ResponseError::ConcurrentTransactions),
        TxnError::ProducerFenced if version >= fenced_since => ErrorCode::of(ResponseError::ProducerFenced),
        TxnError::ProducerFenced => ErrorCode::of(ResponseError::InvalidProducerEpoch),
        TxnError::InvalidProducerIdMapping => ErrorCode::of(ResponseError::InvalidProducerIdMapping),
        TxnError::InvalidTxnState => ErrorCode::of(ResponseError::InvalidTxnState),
        TxnError::InvalidTransactionTimeout => ErrorCode::of(ResponseError::InvalidTransactionTimeout),
    }
}
