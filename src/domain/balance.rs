//! The balance invariant (ARCHITECTURE §4): a card's available balance at the edge is the
//! last central snapshot minus local debits not yet reflected in that snapshot plus local
//! credits not yet reflected. Central tells the edge which of this site's operations a
//! snapshot already reflects (`edge_seq`: the highest outbox sequence of this site applied
//! or rejected for the card), so merging a snapshot never double-counts or drops one.

/// Local operations not yet reflected in a snapshot, summed. The sums come from one SQL
/// aggregate over the outbox (`db::replica::pending_for`), model-tested against merges
/// there (`snapshots_never_double_count_or_drop`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub debit_cents: i64,
    pub credit_cents: i64,
    pub points: i64,
}

pub fn available_balance(snapshot_cents: i64, pending: Pending) -> i64 {
    snapshot_cents - pending.debit_cents + pending.credit_cents
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
        // Snapshot 10_000; local ops not yet in it: two charges (-500, -100), one refund (+200).
        let p = Pending {
            debit_cents: 600,
            credit_cents: 200,
            points: 6,
        };
        assert_eq!(available_balance(10_000, p), 9_600);
        assert_eq!(available_balance(10_000, Pending::default()), 10_000);
        // "At least as new": an equal version replaces, an older one does not.
        assert!(snapshot_is_newer(5, 5));
        assert!(snapshot_is_newer(5, 6));
        assert!(!snapshot_is_newer(6, 5));
    }

    #[test]
    fn a_late_snapshot_does_not_replace_a_newer_one() {
        let mut current = -1;
        for v in [3, 1, 2] {
            if snapshot_is_newer(current, v) {
                current = v;
            }
        }
        assert_eq!(current, 3);
    }

    proptest! {
        /// Snapshots arriving out of order never move the edge backwards: after each
        /// delivery the edge holds exactly the newest version delivered so far.
        #[test]
        fn stale_snapshots_are_ignored(versions in prop::collection::vec(0i64..1000, 1..30)) {
            let mut current = -1;
            let mut newest = -1;
            for v in versions {
                if snapshot_is_newer(current, v) { current = v; }
                newest = newest.max(v);
                prop_assert_eq!(current, newest);
            }
        }
    }
}
