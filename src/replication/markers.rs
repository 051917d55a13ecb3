//! Transaction markers on a partition this broker leads (WriteTxnMarkers): the marker
//! is checked against the producer's epoch and the coordinator's epoch, appended like
//! any batch (acks=all: answered once every in-sync replica has it), and then moves
//! the last stable offset.

use super::partition::{AppendError, Partition};
use crate::common::now_ms;
use crate::log::control::ControlMarker;
use crate::log::producer_state::MarkerDecision;

impl Partition {
    /// Writes the marker ending `producer_id`'s transaction here and waits until it is
    /// replicated to the ISR (or `deadline`).
    pub async fn write_marker(
        self: &std::sync::Arc<Self>,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlMarker,
        deadline: tokio::time::Instant,
    ) -> Result<(), AppendError> {
        let (info, needs_flush) = {
            let now = now_ms();
            let mut log = self.log.lock();
            {
                let state = self.state.lock();
                if state.leader != self.node_id {
                    return Err(AppendError::NotLeader);
                }
            }
            match log
                .producers()
                .check_marker(producer_id, producer_epoch, marker.coordinator_epoch)
            {
                MarkerDecision::Append => {}
                MarkerDecision::InvalidProducerEpoch => {
                    return Err(AppendError::InvalidProducerEpoch { producer_id });
                }
                MarkerDecision::CoordinatorFenced => return Err(AppendError::CoordinatorFenced),
            }
            let info = log.append_marker(producer_id, producer_epoch, marker, now)?;
            let state = self.state.lock();
            let followers = self.followers.lock();
            self.refresh_high_watermark(&mut log, &state, &followers);
            (info, log.needs_flush(now))
        };
        self.appended.notify_waiters();
        if needs_flush {
            self.flush_to(info.last_offset + 1).await?;
        }
        self.wait_replicated(info.last_offset + 1, deadline).await
    }

    /// Whether `producer_id` has an open transaction in this partition.
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        self.log.lock().producers().in_transaction(producer_id)
    }
}
