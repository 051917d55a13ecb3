//! `share.isolation.level=read_committed` for a share group: which offsets of a read
//! belong to aborted transactions, so the share-partition archives them instead of
//! delivering them. Kafka's consumer rule, applied by the broker: an aborted
//! transaction (producer id, first offset) is open from its first offset until its
//! producer's ABORT marker; a transactional batch of that producer inside it is
//! aborted. Pure: the caller reads the batch headers and the aborted-transaction index.

/// One batch of a read, as the rule needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub producer_id: i64,
    pub transactional: bool,
    /// Some(true) for an ABORT marker, Some(false) for a COMMIT marker.
    pub marker_abort: Option<bool>,
}

/// The offset ranges (first, last) of aborted transactional batches among `batches`
/// (in offset order), given the aborted transactions overlapping the read.
pub fn aborted_ranges(batches: &[ReadBatch], aborted: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|(_, first_offset)| std::cmp::Reverse(*first_offset));
    let mut open: std::collections::HashSet<i64> = std::collections::HashSet::new();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for batch in batches {
        while pending
            .last()
            .is_some_and(|(_, first_offset)| *first_offset <= batch.last_offset)
        {
            if let Some((producer_id, _)) = pending.pop() {
                open.insert(producer_id);
            }
        }
        match batch.marker_abort {
            Some(true) => {
                open.remove(&batch.producer_id);
            }
            Some(false) => {}
            None if batch.transactional && open.contains(&batch.producer_id) => match ranges.last_mut() {
                Some(last) if last.1 + 1 == batch.base_offset => last.1 = batch.last_offset,
                _ => ranges.push((batch.base_offset, batch.last_offset)),
            },
            None => {}
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(base_offset: i64, last_offset: i64, producer_id: i64, transactional: bool) -> ReadBatch {
        ReadBatch {
            base_offset,
            last_offset,
            producer_id,
            transactional,
            marker_abort: None,
        }
    }

    fn marker(offset: i64, producer_id: i64, abort: bool) -> ReadBatch {
        ReadBatch {
            base_offset: offset,
            last_offset: offset,
            producer_id,
            transactional: true,
            marker_abort: Some(abort),
        }
    }

    #[test]
    fn only_the_aborted_producers_batches_inside_its_transaction_go() {
        let batches = [
            data(0, 2, 7, true),   // aborted transaction of producer 7
            data(3, 4, 8, true),   // producer 8, committed
            data(5, 5, -1, false), // not transactional
            data(6, 7, 7, true),   // still producer 7's aborted transaction
            marker(8, 7, true),    // ABORT of 7
            marker(9, 8, false),   // COMMIT of 8
            data(10, 11, 7, true), // producer 7's next transaction (committed)
            marker(12, 7, false),
        ];
        assert_eq!(aborted_ranges(&batches, &[(7, 0)]), vec![(0, 2), (6, 7)]);
        assert_eq!(aborted_ranges(&batches, &[]), vec![]);
    }

    #[test]
    fn adjacent_aborted_batches_make_one_range() {
        let batches = [
            data(0, 1, 3, true),
            data(2, 3, 3, true),
            data(4, 5, 4, true),
            marker(6, 3, true),
        ];
        assert_eq!(aborted_ranges(&batches, &[(3, 0), (4, 4)]), vec![(0, 5)]);
        assert_eq!(
            aborted_ranges(&batches, &[(3, 0)]),
            vec![(0, 3)],
            "producer 4 committed"
        );
    }
}
