//! The balance invariant (ARCHITECTURE §4): a card's available balance at the edge is the
//! last central snapshot minus local debits not yet reflected in that snapshot plus local
//! credits not yet reflected. Central tells the edge which of this site's operations a
//! snapshot already reflects (`edge_seq`: the highest outbox sequence of this site applied
//! or rejected for the card), so merging a snapshot never double-counts or drops one.

/// One local money operation on a card, in outbox order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalOp {
    pub seq: i64,
    /// Negative for debits (charges), positive for credits (refunds).
    pub delta_cents: i64,
    pub points: i64,
}

/// Local operations not yet reflected in a snapshot, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub debit_cents: i64,
    pub credit_cents: i64,
    pub points: i64,
}

pub fn available_balance(snapshot_cents: i64, pending: Pending) -> i64 {
    snapshot_cents - pending.debit_cents + pending.credit_cents
}

/// Sums the operations a snapshot with `reflected_seq` does not yet include.
pub fn pending_after(ops: &[LocalOp], reflected_seq: i64) -> Pending {
    ops.iter()
        .filter(|op| op.seq > reflected_seq)
        .fold(Pending::default(), |mut p, op| {
            if op.delta_cents < 0 {
                p.debit_cents += -op.delta_cents;
            } else {
                p.credit_cents += op.delta_cents;
            }
            p.points += op.points;
            p
        })
}

/// A card snapshot's ordering key: central's per-row version (monotonic in commit order).
/// A snapshot replaces the current one only when it is at least as new.
pub fn snapshot_is_newer(current_version: i64, incoming_version: i64) -> bool {
    incoming_version >= current_version
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn example() {
        let ops = [
            LocalOp {
                seq: 1,
                delta_cents: -500,
                points: 5,
            },
            LocalOp {
                seq: 2,
                delta_cents: 200,
                points: 0,
            },
            LocalOp {
                seq: 3,
                delta_cents: -100,
                points: 1,
            },
        ];
        let p = pending_after(&ops, 0);
        assert_eq!(
            p,
            Pending {
                debit_cents: 600,
                credit_cents: 200,
                points: 6
            }
        );
        assert_eq!(available_balance(10_000, p), 9_600);
        // Central applied ops 1 and 2: its snapshot is 10_000 - 500 + 200 = 9_700.
        assert_eq!(available_balance(9_700, pending_after(&ops, 2)), 9_600);
        assert!(snapshot_is_newer(5, 5));
        assert!(!snapshot_is_newer(6, 5));
    }

    fn op_strategy() -> impl Strategy<Value = Vec<(bool, i64)>> {
        prop::collection::vec((any::<bool>(), 1i64..100_000), 0..40)
    }

    proptest! {
        /// Whatever prefix of the local operations central has applied when a snapshot is
        /// taken, the edge's available balance after merging it is the same — as long as
        /// central applied them without rejecting any.
        #[test]
        fn merge_never_double_counts_or_drops(raw in op_strategy(), start in 0i64..10_000_000, cut in 0usize..41) {
            let ops: Vec<LocalOp> = raw.iter().enumerate().map(|(i, (debit, amt))| LocalOp {
                seq: i as i64 + 1,
                delta_cents: if *debit { -amt } else { *amt },
                points: 0,
            }).collect();
            let expected = available_balance(start, pending_after(&ops, 0));
            let k = cut.min(ops.len());
            let central_after_k: i64 = start + ops[..k].iter().map(|o| o.delta_cents).sum::<i64>();
            let merged = available_balance(central_after_k, pending_after(&ops, k as i64));
            prop_assert_eq!(merged, expected);
        }

        /// Snapshots arriving out of order never move the edge backwards.
        #[test]
        fn stale_snapshots_are_ignored(versions in prop::collection::vec(0i64..1000, 1..30)) {
            let mut current = -1;
            for v in versions {
                if snapshot_is_newer(current, v) { current = v; }
                prop_assert!(current >= v || current > v);
            }
        }
    }
}
