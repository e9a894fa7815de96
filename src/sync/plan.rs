//! Pure sync planning: what to push next, how long to back off, where to resume a pull.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Most operations sent in one `edge_apply_batch` call.
pub const PUSH_BATCH: usize = 200;
/// Rows asked for per pull page.
pub const PULL_PAGE: i64 = 1000;
/// A pull cycle restarts this far behind its cursor, so rows whose transaction committed
/// late (with an older `updated_at`) are still picked up. Upserts make re-reads harmless.
pub const OVERLAP_SECS: i64 = 300;

/// The kinds pulled, in dependency order (levels before cards so levels apply).
pub const ALL_KINDS: [&str; 6] = [
    "merchant",
    "levels",
    "members",
    "cards",
    "qr_states",
    "qr_chains",
];

/// The kinds pulled every few seconds and at once on a QR miss: new codes, offline-code
/// chains and their revocations (a lost phone) reach the till quickly.
pub const QR_KINDS: [&str; 2] = ["qr_states", "qr_chains"];

/// Exponential backoff with jitter: base 1 s doubling to a 60 s cap, then a random
/// factor in [0.5, 1.0) so many stores do not retry in step. `unit` is in [0, 1).
pub fn backoff(attempt: u32, unit: f64) -> Duration {
    let cap = 60.0_f64;
    let raw = (2f64.powi(attempt.min(16) as i32)).min(cap);
    Duration::from_millis(((raw * (0.5 + unit.clamp(0.0, 1.0) * 0.5)) * 1000.0) as u64)
}

/// One pending outbox row, as a push needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOp {
    pub seq: i64,
    /// None for a settlement (it has no card).
    pub card_id: Option<String>,
    pub payload: String,
}

/// Builds the operations of one push from pending outbox rows in order.
pub fn batch_ops(rows: &[PendingOp]) -> Result<Vec<Value>, serde_json::Error> {
    rows.iter()
        .take(PUSH_BATCH)
        .map(|r| {
            let mut v: Value = serde_json::from_str(&r.payload)?;
            if let Value::Object(map) = &mut v {
                map.insert("seq".into(), Value::from(r.seq));
            }
            Ok(v)
        })
        .collect()
}

/// Splits the oldest pending rows (in seq order) into two batches central may apply at
/// the same time, in two backends: a second batch lets central use a second core while
/// the first is applied (a batch runs in one backend; a legacy proof costs one bcrypt).
///
/// Only the order of each card's own ops matters centrally (balance, points, level,
/// refund after its charge), and a settlement follows every sale before it. So the
/// first batch is the oldest `size` rows, and the second takes the rows after them,
/// skipping every op on a card the first batch touches, and stops at the first
/// settlement. Skipped ops stay pending and go in a later round, still in seq order
/// per card.
pub fn concurrent_batches(rows: &[PendingOp], size: usize) -> (&[PendingOp], Vec<PendingOp>) {
    let first = &rows[..rows.len().min(size)];
    let busy: std::collections::HashSet<&str> =
        first.iter().filter_map(|r| r.card_id.as_deref()).collect();
    if first.iter().any(|r| r.card_id.is_none()) {
        // a settlement in the first batch: what follows it waits for it
        return (first, Vec::new());
    }
    let second = rows[first.len()..]
        .iter()
        .take_while(|r| r.card_id.is_some())
        .filter(|r| r.card_id.as_deref().is_some_and(|c| !busy.contains(c)))
        .take(size)
        .cloned()
        .collect();
    (first, second)
}

/// A keyset cursor (updated_at, id).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub ts: String,
    pub id: String,
}

pub const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// Where a new pull cycle starts: nothing yet → from the beginning; else the cursor
/// moved back by the overlap window (the id reset so equal timestamps are re-read).
pub fn cycle_start(cursor: Option<&Cursor>) -> Option<Cursor> {
    let c = cursor?;
    let ts = chrono::DateTime::parse_from_rfc3339(&c.ts).ok()?;
    let back = ts - chrono::Duration::seconds(OVERLAP_SECS);
    Some(Cursor {
        ts: back.to_rfc3339(),
        id: NIL_UUID.into(),
    })
}

/// The later of two cursors (a cycle never moves the stored cursor backwards).
pub fn later(a: Option<Cursor>, b: Cursor) -> Cursor {
    match a {
        None => b,
        Some(a) => {
            let ta = chrono::DateTime::parse_from_rfc3339(&a.ts).ok();
            let tb = chrono::DateTime::parse_from_rfc3339(&b.ts).ok();
            match (ta, tb) {
                (Some(x), Some(y)) if (x, &a.id) > (y, &b.id) => a,
                _ => b,
            }
        }
    }
}

/// A pipeline's state, as `/sync/status`, `/ready`, `doctor` and the console show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PipelineState {
    /// The last step succeeded, or none has run yet.
    Ok,
    /// Retrying since `failing_since`.
    Failing,
    /// A permanent error; `sync now` after fixing it.
    Stopped,
}

/// One pipeline's state, its error and how long it has been failing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PipelineStatus {
    pub state: PipelineState,
    pub error: Option<String>,
    /// Unix time of the first failure since the last success.
    pub failing_since_unix: Option<i64>,
    pub failing_secs: Option<i64>,
}

/// What makes the sync unhealthy, one line per pipeline, each with cause and fix: a
/// stopped pipeline at once, a failing one once it has failed for `alert_after_secs`.
/// Sales go on either way (they wait in the outbox); this is for `/ready`, `doctor` and
/// the console banner.
pub fn problems(
    push: &PipelineStatus,
    pull: &PipelineStatus,
    alert_after_secs: i64,
) -> Vec<String> {
    let mut out = Vec::new();
    for (what, p) in [("push to central", push), ("pull from central", pull)] {
        let cause = p.error.as_deref().unwrap_or("unknown error");
        match p.state {
            PipelineState::Stopped => out.push(format!(
                "{what} is stopped: {cause} — after fixing that, run `mps-edge sync now` (or Sync now in the console)"
            )),
            PipelineState::Failing if p.failing_secs.unwrap_or(0) >= alert_after_secs => out.push(format!(
                "{what} has failed for {}: {cause} — it retries by itself; sales wait in the outbox",
                human_secs(p.failing_secs.unwrap_or(0))
            )),
            _ => {}
        }
    }
    out
}

/// `95` → "1 min 35 s", `7260` → "2 h 1 min".
pub fn human_secs(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe(state: &str, error: Option<&str>, failing_secs: Option<i64>) -> PipelineStatus {
        PipelineStatus {
            state: match state {
                "stopped" => PipelineState::Stopped,
                "failing" => PipelineState::Failing,
                _ => PipelineState::Ok,
            },
            error: error.map(String::from),
            failing_since_unix: failing_secs.map(|s| 1_000_000 - s),
            failing_secs,
        }
    }

    #[test]
    fn states_keep_their_wire_names() {
        for name in ["ok", "failing", "stopped"] {
            let v = serde_json::to_value(pipe(name, None, None)).unwrap_or_default();
            assert_eq!(v["state"], name);
        }
    }

    #[test]
    fn problems_name_the_pipeline_cause_and_fix() {
        let ok = pipe("ok", None, None);
        assert!(problems(&ok, &ok, 600).is_empty());
        // failing, but not for long: no problem yet; at the threshold: one
        let young = pipe("failing", Some("central unreachable"), Some(599));
        assert!(problems(&young, &ok, 600).is_empty());
        let old = pipe("failing", Some("central unreachable"), Some(600));
        let p = problems(&old, &ok, 600);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("push to central has failed for 10 min 0 s: central unreachable"),
            "{p:?}"
        );
        // a stop counts at once, whatever its age, and says how to clear it
        let stopped = pipe("stopped", Some("central refused the key"), Some(1));
        let p = problems(&ok, &stopped, 600);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("pull from central is stopped: central refused the key"),
            "{p:?}"
        );
        assert!(p[0].contains("mps-edge sync now"));
        assert_eq!(problems(&stopped, &old, 600).len(), 2);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_secs(-5), "0 s");
        assert_eq!(human_secs(59), "59 s");
        assert_eq!(human_secs(95), "1 min 35 s");
        assert_eq!(human_secs(7260), "2 h 1 min");
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        assert!(backoff(0, 0.0) >= Duration::from_millis(500));
        assert!(backoff(0, 0.999) < Duration::from_millis(1000));
        assert!(backoff(3, 0.0) >= Duration::from_secs(4));
        assert!(backoff(30, 0.999) <= Duration::from_secs(60));
        assert!(backoff(30, 0.0) >= Duration::from_secs(30));
    }

    fn op(seq: i64, card: Option<&str>) -> PendingOp {
        PendingOp {
            seq,
            card_id: card.map(String::from),
            payload: format!("{{\"op_id\":\"{seq}\"}}"),
        }
    }

    fn seqs(rows: &[PendingOp]) -> Vec<i64> {
        rows.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn the_second_batch_skips_the_first_batchs_cards_and_stops_at_a_settlement() {
        // (rows, size, first, second)
        type Case = (Vec<PendingOp>, usize, Vec<i64>, Vec<i64>);
        let cases: Vec<Case> = vec![
            (vec![], 2, vec![], vec![]),
            (vec![op(1, Some("a"))], 2, vec![1], vec![]),
            (
                vec![
                    op(1, Some("a")),
                    op(2, Some("b")),
                    op(3, Some("c")),
                    op(4, Some("d")),
                ],
                2,
                vec![1, 2],
                vec![3, 4],
            ),
            // card a is busy in the first batch: its later op waits, others go
            (
                vec![
                    op(1, Some("a")),
                    op(2, Some("b")),
                    op(3, Some("a")),
                    op(4, Some("c")),
                ],
                2,
                vec![1, 2],
                vec![4],
            ),
            // a settlement after the first batch ends the second
            (
                vec![op(1, Some("a")), op(2, None), op(3, Some("c"))],
                1,
                vec![1],
                vec![],
            ),
            (
                vec![
                    op(1, Some("a")),
                    op(2, Some("b")),
                    op(3, None),
                    op(4, Some("c")),
                ],
                1,
                vec![1],
                vec![2],
            ),
            // a settlement in the first batch: nothing runs beside it
            (vec![op(1, None), op(2, Some("b"))], 1, vec![1], vec![]),
            // the second batch is capped at size too
            (
                (1..=7).map(|i| op(i, Some(&format!("c{i}")))).collect(),
                3,
                vec![1, 2, 3],
                vec![4, 5, 6],
            ),
        ];
        for (rows, size, first, second) in cases {
            let (a, b) = concurrent_batches(&rows, size);
            assert_eq!((seqs(a), seqs(&b)), (first, second), "{rows:?}");
        }
    }

    #[test]
    fn batches_keep_order_and_add_seq() {
        let rows: Vec<PendingOp> = (1..=300).map(|i| op(i, Some("c"))).collect();
        let ops = batch_ops(&rows).unwrap();
        assert_eq!(ops.len(), PUSH_BATCH);
        assert_eq!(ops[0]["seq"], 1);
        assert_eq!(ops[199]["seq"], 200);
        assert_eq!(ops[5]["op_id"], "6");
    }

    #[test]
    fn cycles_restart_behind_the_cursor() {
        assert_eq!(cycle_start(None), None);
        let c = Cursor {
            ts: "2026-01-01T00:10:00+00:00".into(),
            id: "x".into(),
        };
        let s = cycle_start(Some(&c)).unwrap();
        assert_eq!(s.ts, "2026-01-01T00:05:00+00:00");
        assert_eq!(s.id, NIL_UUID);
        let older = Cursor {
            ts: "2026-01-01T00:00:00+00:00".into(),
            id: "z".into(),
        };
        assert_eq!(later(Some(c.clone()), older), c);
    }
}
