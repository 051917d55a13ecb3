//! Transaction coordinator refusals as the error code each request version knows:
//! PRODUCER_FENCED exists only in the versions KIP-588 added it to; older clients get
//! INVALID_PRODUCER_EPOCH, as Kafka answers them.

use crate::txn::state::TxnError;
use kafka_protocol::ResponseError;

/// The code for `error` in a response of a request whose versions from
/// `fenced_since` on know PRODUCER_FENCED.
pub fn code(error: TxnError, version: i16, fenced_since: i16) -> i16 {
    match error {
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions.code(),
        TxnError::ProducerFenced if version >= fenced_since => ResponseError::ProducerFenced.code(),
        TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch.code(),
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping.code(),
        TxnError::InvalidTxnState => ResponseError::InvalidTxnState.code(),
        TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout.code(),
    }
}
