//! The replica of central's offline-code chains (mq2, `mps_edge.qr_chains`) and this
//! edge's use of them. The edge stores anchors and used slots only: it checks codes, it
//! cannot make them (src/domain/mq2.rs).

use crate::db::CachedExt;
use rusqlite::{params, Connection, OptionalExtension};

use crate::domain::mq2::{ChainState, Value};
use crate::error::{AppResult, ErrorCode};

/// A chain as central's pull sends it (kind `qr_chains`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledChain {
    pub central_id: String,
    pub card_id: String,
    pub chain_id: String,
    pub anchor: Value,
    pub epoch_unix: i64,
    pub slot_secs: u32,
    pub slots: u32,
    pub ends_at_unix: i64,
    pub revoked_at_unix: Option<i64>,
    pub used_through: u32,
    pub updated_at: String,
}

/// Central forgets a chain's used slots 35 days after it ended; so does the edge.
pub const KEEP_ENDED_SECS: i64 = 35 * 86_400;

/// Stores a pulled chain. The anchor of a known chain never changes; a revocation is
/// never undone; the used slot only moves up (the edge may be ahead of central with
/// codes it accepted and has not pushed yet). Returns whether anything changed.
pub fn put_pulled(conn: &Connection, c: &PulledChain) -> AppResult<bool> {
    let n = conn.exec_cached(
        "INSERT INTO qr_chains(card_id, chain_id, central_id, anchor, epoch_unix, slot_secs, slots, ends_at_unix,
             revoked_at_unix, used_through, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT(card_id, chain_id) DO UPDATE SET
             revoked_at_unix = coalesce(qr_chains.revoked_at_unix, excluded.revoked_at_unix),
             used_through = max(qr_chains.used_through, excluded.used_through),
             updated_at = excluded.updated_at
         WHERE qr_chains.used_through < excluded.used_through
            OR (qr_chains.revoked_at_unix IS NULL AND excluded.revoked_at_unix IS NOT NULL)",
        params![
            c.card_id,
            c.chain_id,
            c.central_id,
            &c.anchor[..],
            c.epoch_unix,
            c.slot_secs,
            c.slots,
            c.ends_at_unix,
            c.revoked_at_unix,
            c.used_through,
            c.updated_at
        ],
    )?;
    Ok(n > 0)
}

/// Drops chains that ended longer ago than central remembers their used slots.
pub fn prune(conn: &Connection, now_unix: i64) -> AppResult<usize> {
    Ok(conn.exec_cached(
        "DELETE FROM qr_chains WHERE ends_at_unix < ?1",
        [now_unix - KEEP_ENDED_SECS],
    )?)
}

/// What this edge knows of a card's chain, for `mq2::verify`.
pub fn load(conn: &Connection, card_id: &str, chain_id: &str) -> AppResult<Option<ChainState>> {
    let row = conn
        .query_row(
            "SELECT anchor, epoch_unix, slot_secs, slots, revoked_at_unix, used_through, last_slot, last_value
             FROM qr_chains WHERE card_id = ?1 AND chain_id = ?2",
            params![card_id, chain_id],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, Option<u32>>(6)?,
                    r.get::<_, Option<Vec<u8>>>(7)?,
                ))
            },
        )
        .optional()?;
    Ok(row.and_then(
        |(anchor, epoch_unix, slot_secs, slots, revoked, used_through, last_slot, last_value)| {
            let anchor: Value = anchor.try_into().ok()?;
            let last_value = match (last_slot, last_value) {
                (Some(k), Some(v)) => Some((k, Value::try_from(v).ok()?)),
                _ => None,
            };
            Some(ChainState {
                anchor,
                epoch_unix,
                slot_secs,
                slots,
                revoked: revoked.is_some(),
                used_through,
                last_value,
            })
        },
    ))
}

/// Uses slot `slot` of the chain whose code was verified against `anchor` (inside the
/// charge's transaction): refused if the chain was revoked, replaced, or a slot at or
/// above this one was used since the check. Single use per slot holds whatever the
/// store's QR single-use setting says, because central refuses a slot used twice.
pub fn claim_slot(
    conn: &Connection,
    card_id: &str,
    chain_id: &str,
    anchor: &Value,
    slot: u32,
    value: &Value,
) -> AppResult<()> {
    let n = conn.exec_cached(
        "UPDATE qr_chains SET used_through = ?4, last_slot = ?4, last_value = ?5
         WHERE card_id = ?1 AND chain_id = ?2 AND anchor = ?3 AND revoked_at_unix IS NULL AND used_through < ?4",
        params![card_id, chain_id, &anchor[..], slot, &value[..]],
    )?;
    if n == 1 {
        return Ok(());
    }
    // Say why, from what changed since the code was checked.
    Err(match load(conn, card_id, chain_id)? {
        Some(c) if c.anchor == *anchor && c.revoked => ErrorCode::QrChainRevoked.into(),
        Some(c) if c.anchor == *anchor => ErrorCode::QrAlreadyUsed.into(),
        _ => ErrorCode::QrExpiredOrInvalid.into(),
    })
}

/// Standalone demo mode: enrols a chain for a card as central's
/// `edge_enroll_offline_qr` would (revoking the card's live chains), keeping the seed
/// so the demo can play the member's phone. Returns the chain id.
pub fn enrol_demo(
    conn: &Connection,
    card_id: &str,
    seed: &Value,
    epoch_unix: i64,
    slot_secs: u32,
    slots: u32,
    now_unix: i64,
) -> AppResult<String> {
    let anchor = crate::domain::mq2::anchor(seed, slots);
    let chain_id = crate::domain::mq2::chain_id(&anchor);
    let updated = super::now_rfc3339();
    conn.exec_cached(
        "UPDATE qr_chains SET revoked_at_unix = ?2, updated_at = ?3 WHERE card_id = ?1 AND revoked_at_unix IS NULL",
        params![card_id, now_unix, updated],
    )?;
    put_pulled(
        conn,
        &PulledChain {
            central_id: super::new_id(),
            card_id: card_id.to_string(),
            chain_id: chain_id.clone(),
            anchor,
            epoch_unix,
            slot_secs,
            slots,
            ends_at_unix: epoch_unix + i64::from(slots) * i64::from(slot_secs),
            revoked_at_unix: None,
            used_through: 0,
            updated_at: updated,
        },
    )?;
    conn.exec_cached(
        "INSERT OR REPLACE INTO demo_chain_seeds(card_id, chain_id, seed) VALUES (?1, ?2, ?3)",
        params![card_id, chain_id, &seed[..]],
    )?;
    Ok(chain_id)
}

/// Standalone demo mode: the card's live demo chain (its state and seed), if any.
pub fn demo_chain(
    conn: &Connection,
    card_id: &str,
    now_unix: i64,
) -> AppResult<Option<(ChainState, Value)>> {
    let row: Option<(String, Vec<u8>)> = conn
        .query_row(
            "SELECT c.chain_id, s.seed FROM qr_chains c
               JOIN demo_chain_seeds s ON s.card_id = c.card_id AND s.chain_id = c.chain_id
              WHERE c.card_id = ?1 AND c.revoked_at_unix IS NULL AND c.ends_at_unix > ?2
              ORDER BY c.epoch_unix DESC LIMIT 1",
            params![card_id, now_unix],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((chain_id, seed)) = row else {
        return Ok(None);
    };
    let Ok(seed) = Value::try_from(seed) else {
        return Ok(None);
    };
    Ok(load(conn, card_id, &chain_id)?.map(|c| (c, seed)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::mq2::{anchor, chain_id, hash_n};

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        crate::db::migrate::migrate(&mut conn).unwrap();
        (dir, conn)
    }

    fn pulled(seed: &Value, used: u32, revoked: Option<i64>) -> PulledChain {
        let a = anchor(seed, 100);
        PulledChain {
            central_id: "c1".into(),
            card_id: "card".into(),
            chain_id: chain_id(&a),
            anchor: a,
            epoch_unix: 1_000,
            slot_secs: 60,
            slots: 100,
            ends_at_unix: 7_000,
            revoked_at_unix: revoked,
            used_through: used,
            updated_at: "2026-12-03T00:00:00Z".into(),
        }
    }

    #[test]
    fn pulls_only_move_forward() {
        let (_d, conn) = db();
        let seed = [3u8; 32];
        let p = pulled(&seed, 5, None);
        assert!(put_pulled(&conn, &p).unwrap());
        assert!(
            !put_pulled(&conn, &p).unwrap(),
            "a re-delivered row changes nothing"
        );
        assert!(!put_pulled(&conn, &pulled(&seed, 2, None)).unwrap());
        let c = load(&conn, "card", &p.chain_id).unwrap().unwrap();
        assert_eq!(c.used_through, 5);
        // a pulled row with another anchor never replaces the stored one
        let mut other = pulled(&[4u8; 32], 9, None);
        other.chain_id = p.chain_id.clone();
        put_pulled(&conn, &other).unwrap();
        let c = load(&conn, "card", &p.chain_id).unwrap().unwrap();
        assert_eq!(c.anchor, p.anchor);
        assert_eq!(c.used_through, 9);
        assert!(put_pulled(&conn, &pulled(&seed, 9, Some(2_000))).unwrap());
        assert!(
            !put_pulled(&conn, &pulled(&seed, 9, None)).unwrap(),
            "a revocation stays"
        );
        assert!(load(&conn, "card", &p.chain_id).unwrap().unwrap().revoked);
        assert_eq!(prune(&conn, 7_000 + KEEP_ENDED_SECS).unwrap(), 0);
        assert_eq!(prune(&conn, 7_001 + KEEP_ENDED_SECS).unwrap(), 1);
    }

    #[test]
    fn a_slot_is_claimed_once_and_refusals_say_why() {
        let (_d, conn) = db();
        let seed = [5u8; 32];
        let p = pulled(&seed, 0, None);
        put_pulled(&conn, &p).unwrap();
        let v10 = hash_n(&seed, 90);
        claim_slot(&conn, "card", &p.chain_id, &p.anchor, 10, &v10).unwrap();
        let c = load(&conn, "card", &p.chain_id).unwrap().unwrap();
        assert_eq!((c.used_through, c.last_value), (10, Some((10, v10))));
        let again = claim_slot(&conn, "card", &p.chain_id, &p.anchor, 10, &v10).unwrap_err();
        assert_eq!(again.code(), ErrorCode::QrAlreadyUsed);
        let lower = claim_slot(&conn, "card", &p.chain_id, &p.anchor, 9, &v10).unwrap_err();
        assert_eq!(lower.code(), ErrorCode::QrAlreadyUsed);
        let wrong = claim_slot(&conn, "card", &p.chain_id, &[0u8; 32], 11, &v10).unwrap_err();
        assert_eq!(wrong.code(), ErrorCode::QrExpiredOrInvalid);
        let unknown = claim_slot(&conn, "other", &p.chain_id, &p.anchor, 11, &v10).unwrap_err();
        assert_eq!(unknown.code(), ErrorCode::QrExpiredOrInvalid);
        put_pulled(&conn, &pulled(&seed, 0, Some(2_000))).unwrap();
        let revoked = claim_slot(&conn, "card", &p.chain_id, &p.anchor, 11, &v10).unwrap_err();
        assert_eq!(revoked.code(), ErrorCode::QrChainRevoked);
    }

    #[test]
    fn a_demo_enrolment_replaces_the_cards_chain() {
        let (_d, conn) = db();
        let first = enrol_demo(&conn, "card", &[1u8; 32], 1_000, 60, 100, 1_500).unwrap();
        let (c, seed) = demo_chain(&conn, "card", 1_500).unwrap().unwrap();
        assert_eq!((seed, chain_id(&c.anchor)), ([1u8; 32], first.clone()));
        let second = enrol_demo(&conn, "card", &[2u8; 32], 1_000, 60, 100, 1_600).unwrap();
        assert_ne!(first, second);
        assert!(load(&conn, "card", &first).unwrap().unwrap().revoked);
        assert_eq!(
            demo_chain(&conn, "card", 1_600).unwrap().unwrap().1,
            [2u8; 32]
        );
        assert!(demo_chain(&conn, "card", 7_000).unwrap().is_none(), "ended");
    }
}
