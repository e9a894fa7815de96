//! Pure sync planning: what to push next, how long to back off, where to resume a pull.

use std::time::Duration;

use serde_json::Value;

/// Most operations sent in one `edge_apply_batch` call.
pub const PUSH_BATCH: usize = 200;
/// Rows asked for per pull page.
pub const PULL_PAGE: i64 = 1000;
/// A pull cycle restarts this far behind its cursor, so rows whose transaction committed
/// late (with an older `updated_at`) are still picked up. Upserts make re-reads harmless.
pub const OVERLAP_SECS: i64 = 300;

/// The kinds pulled, in dependency order (levels before cards so levels apply).
pub const ALL_KINDS: [&str; 5] = ["merchant", "levels", "members", "cards", "qr_states"];

/// Exponential backoff with jitter: base 1 s doubling to a 60 s cap, then a random
/// factor in [0.5, 1.0) so many stores do not retry in step. `unit` is in [0, 1).
pub fn backoff(attempt: u32, unit: f64) -> Duration {
    let cap = 60.0_f64;
    let raw = (2f64.powi(attempt.min(16) as i32)).min(cap);
    Duration::from_millis(((raw * (0.5 + unit.clamp(0.0, 1.0) * 0.5)) * 1000.0) as u64)
}

/// Builds the operations of one push from pending outbox rows (seq, payload) in order.
pub fn batch_ops(rows: &[(i64, String)]) -> Result<Vec<Value>, serde_json::Error> {
    rows.iter()
        .take(PUSH_BATCH)
        .map(|(seq, payload)| {
            let mut v: Value = serde_json::from_str(payload)?;
            if let Value::Object(map) = &mut v {
                map.insert("seq".into(), Value::from(*seq));
            }
            Ok(v)
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        assert!(backoff(0, 0.0) >= Duration::from_millis(500));
        assert!(backoff(0, 0.999) < Duration::from_millis(1000));
        assert!(backoff(3, 0.0) >= Duration::from_secs(4));
        assert!(backoff(30, 0.999) <= Duration::from_secs(60));
        assert!(backoff(30, 0.0) >= Duration::from_secs(30));
    }

    #[test]
    fn batches_keep_order_and_add_seq() {
        let rows: Vec<(i64, String)> = (1..=300)
            .map(|i| (i, format!("{{\"op_id\":\"{i}\"}}")))
            .collect();
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
