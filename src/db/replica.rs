//! Applying what central sends: pulled rows and push acknowledgements. Every function
//! here is idempotent, and a card snapshot only replaces an older one (by central's
//! per-row version), so re-delivered or out-of-order pages can never move a card back.

use crate::db::CachedExt;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::cards::{load_levels, put_qr_state};
use super::meta;
use crate::domain::balance::{snapshot_is_newer, Pending};
use crate::domain::levels::{level_for_points, Level};
use crate::domain::money::{parse_decimal_cents, parse_milli, Milli};
use crate::domain::CardType;
use crate::error::{AppError, AppResult};

fn text(v: &Value, field: &str) -> AppResult<String> {
    match v.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(AppError::internal(format!(
            "central row lacks {field}: {v}"
        ))),
    }
}

fn opt_text(v: &Value, field: &str) -> Option<String> {
    match v.get(field) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn int(v: &Value, field: &str) -> AppResult<i64> {
    opt_text(v, field)
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| AppError::internal(format!("central row lacks integer {field}: {v}")))
}

fn cents(v: &Value, field: &str) -> AppResult<i64> {
    parse_decimal_cents(&text(v, field)?)
        .ok_or_else(|| AppError::internal(format!("bad amount in {field}: {v}")))
}

fn milli(v: &Value, field: &str) -> AppResult<Option<Milli>> {
    match opt_text(v, field) {
        None => Ok(None),
        Some(t) => parse_milli(&t)
            .map(Some)
            .ok_or_else(|| AppError::internal(format!("bad discount in {field}: {v}"))),
    }
}

fn unix(v: &Value, field: &str) -> AppResult<Option<i64>> {
    match opt_text(v, field) {
        None => Ok(None),
        Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
            .map(|d| Some(d.timestamp()))
            .map_err(|_| AppError::internal(format!("bad time in {field}: {t}"))),
    }
}

/// Central's card as pulled or returned with a push result.
#[derive(Debug, Clone, PartialEq)]
pub struct CardSnapshot {
    pub id: String,
    pub card_no: String,
    pub card_type: CardType,
    pub owner_member_id: Option<String>,
    pub name: Option<String>,
    pub balance_cents: i64,
    pub points: i64,
    pub level: Option<i64>,
    pub discount_milli: Milli,
    pub corporate_discount_milli: Option<Milli>,
    pub fixed_discount_milli: Option<Milli>,
    pub status: String,
    pub expires_at_unix: Option<i64>,
    pub updated_at: String,
    pub version: i64,
    pub edge_seq: i64,
}

impl CardSnapshot {
    pub fn from_json(v: &Value) -> AppResult<CardSnapshot> {
        let type_text = text(v, "card_type")?;
        Ok(CardSnapshot {
            id: text(v, "id")?,
            card_no: text(v, "card_no")?,
            card_type: CardType::parse(&type_text)
                .ok_or_else(|| AppError::internal(format!("unknown card_type {type_text}")))?,
            owner_member_id: opt_text(v, "owner_member_id"),
            name: opt_text(v, "name"),
            balance_cents: cents(v, "balance")?,
            points: int(v, "points")?,
            level: opt_text(v, "level").and_then(|t| t.parse().ok()),
            discount_milli: milli(v, "discount")?.unwrap_or(1000),
            corporate_discount_milli: milli(v, "corporate_discount")?,
            fixed_discount_milli: milli(v, "fixed_discount")?,
            status: text(v, "status")?,
            expires_at_unix: unix(v, "expires_at")?,
            updated_at: text(v, "updated_at")?,
            version: int(v, "version").unwrap_or(0),
            edge_seq: int(v, "edge_seq").unwrap_or(0),
        })
    }
}

/// The status the newest freeze or unfreeze made here gives the card, if central has
/// not reflected it yet (its seq is above `reflected_seq`).
fn local_status(
    conn: &Connection,
    card_id: &str,
    reflected_seq: i64,
) -> AppResult<Option<&'static str>> {
    let op: Option<String> = conn
        .query_row(
            "SELECT op_type FROM outbox WHERE card_id = ?1 AND seq > ?2
                 AND op_type IN ('card_freeze', 'card_unfreeze') ORDER BY seq DESC LIMIT 1",
            params![card_id, reflected_seq],
            |r| r.get(0),
        )
        .optional()?;
    Ok(op.map(|t| {
        if t == "card_freeze" {
            crate::domain::freeze::CARD_STATUS_FROZEN
        } else {
            crate::domain::CARD_STATUS_ACTIVE
        }
    }))
}

/// Local operations on a card not yet reflected in a snapshot with `reflected_seq`.
pub fn pending_for(conn: &Connection, card_id: &str, reflected_seq: i64) -> AppResult<Pending> {
    Ok(conn.row_cached(
        "SELECT COALESCE(SUM(CASE WHEN delta_cents < 0 THEN -delta_cents ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN delta_cents > 0 THEN delta_cents ELSE 0 END), 0),
                COALESCE(SUM(points), 0)
         FROM outbox WHERE card_id = ?1 AND seq > ?2 AND op_type IN ('charge', 'refund', 'recharge')",
        params![card_id, reflected_seq],
        |r| {
            Ok(Pending {
                debit_cents: r.get(0)?,
                credit_cents: r.get(1)?,
                points: r.get(2)?,
            })
        },
    )?)
}

/// Merges a central snapshot of a card. Returns false when it is older than what the
/// edge holds (and therefore ignored).
pub fn merge_card(conn: &Connection, snap: &CardSnapshot, levels: &[Level]) -> AppResult<bool> {
    let current: Option<(i64, i64)> = conn
        .query_row(
            "SELECT snapshot_version, reflected_seq FROM cards WHERE id = ?1",
            [&snap.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let reflected = match current {
        Some((version, _)) if !snapshot_is_newer(version, snap.version) => return Ok(false),
        Some((_, reflected)) => reflected.max(snap.edge_seq),
        None => snap.edge_seq,
    };
    let pending = pending_for(conn, &snap.id, reflected)?;
    // A freeze or unfreeze made here and not yet reflected by central wins over the
    // pulled status: a lost card stays refused while its freeze is on its way.
    let status = local_status(conn, &snap.id, reflected)?.unwrap_or(&snap.status);
    let (level, discount) = if pending.points == 0 {
        (snap.level, snap.discount_milli)
    } else {
        let (l, d) = level_for_points(levels, snap.points + pending.points);
        (Some(l), d)
    };
    conn.exec_cached(
        "INSERT INTO cards(id, card_no, card_type, owner_member_id, name, status, expires_at_unix,
             corporate_discount_milli, fixed_discount_milli, snapshot_balance_cents, snapshot_points,
             snapshot_level, snapshot_discount_milli, snapshot_version, snapshot_updated_at, reflected_seq,
             pending_debit_cents, pending_credit_cents, pending_points, level, discount_milli, is_demo)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, 0)
         ON CONFLICT(id) DO UPDATE SET card_no = excluded.card_no, card_type = excluded.card_type,
             owner_member_id = excluded.owner_member_id, name = excluded.name, status = excluded.status,
             expires_at_unix = excluded.expires_at_unix, corporate_discount_milli = excluded.corporate_discount_milli,
             fixed_discount_milli = excluded.fixed_discount_milli, snapshot_balance_cents = excluded.snapshot_balance_cents,
             snapshot_points = excluded.snapshot_points, snapshot_level = excluded.snapshot_level,
             snapshot_discount_milli = excluded.snapshot_discount_milli, snapshot_version = excluded.snapshot_version,
             snapshot_updated_at = excluded.snapshot_updated_at, reflected_seq = excluded.reflected_seq,
             pending_debit_cents = excluded.pending_debit_cents, pending_credit_cents = excluded.pending_credit_cents,
             pending_points = excluded.pending_points, level = excluded.level, discount_milli = excluded.discount_milli",
        params![
            snap.id, snap.card_no, snap.card_type.as_str(), snap.owner_member_id, snap.name, status,
            snap.expires_at_unix, snap.corporate_discount_milli, snap.fixed_discount_milli, snap.balance_cents,
            snap.points, snap.level, snap.discount_milli, snap.version, snap.updated_at, reflected,
            pending.debit_cents, pending.credit_cents, pending.points, level, discount
        ],
    )?;
    Ok(true)
}

/// Applies one pulled page of `kind`. Returns how many rows changed something.
pub fn apply_page(
    conn: &Connection,
    kind: &str,
    rows: &[Value],
    merchant_code: &str,
) -> AppResult<usize> {
    let mut changed = 0;
    match kind {
        "merchant" => {
            for r in rows {
                let code = text(r, "code")?;
                let id = text(r, "id")?;
                conn.exec_cached(
                    "INSERT INTO merchant(id, code, name, status, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(id) DO UPDATE SET code = excluded.code, name = excluded.name,
                         status = excluded.status, updated_at = excluded.updated_at",
                    params![id, code, text(r, "name")?, text(r, "status")?, text(r, "updated_at")?],
                )?;
                if code == merchant_code {
                    meta::set(conn, meta::MERCHANT_ID, &id)?;
                }
                changed += 1;
            }
        }
        "levels" => {
            for r in rows {
                let id = text(r, "id")?;
                let level = int(r, "level")?;
                conn.exec_cached(
                    "DELETE FROM membership_levels WHERE level = ?1 AND id <> ?2",
                    params![level, id],
                )?;
                conn.exec_cached(
                    "INSERT INTO membership_levels(id, level, name, min_points, max_points, discount_milli, is_active, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT(id) DO UPDATE SET level = excluded.level, name = excluded.name,
                         min_points = excluded.min_points, max_points = excluded.max_points,
                         discount_milli = excluded.discount_milli, is_active = excluded.is_active,
                         updated_at = excluded.updated_at",
                    params![
                        id,
                        level,
                        text(r, "name")?,
                        int(r, "min_points")?,
                        opt_text(r, "max_points").and_then(|t| t.parse::<i64>().ok()),
                        milli(r, "discount")?.unwrap_or(1000),
                        matches!(r.get("is_active"), Some(Value::Bool(true))),
                        text(r, "updated_at")?
                    ],
                )?;
                changed += 1;
            }
        }
        "members" => {
            for r in rows {
                conn.exec_cached(
                    "INSERT INTO members(id, member_no, name, status, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(id) DO UPDATE SET member_no = excluded.member_no, name = excluded.name,
                         status = excluded.status, updated_at = excluded.updated_at",
                    // central sends a member's name only where head office shares names with
                    // this site (edge_set_site_options); else the name stays empty here
                    params![text(r, "id")?, text(r, "member_no")?, opt_text(r, "name").unwrap_or_default(), text(r, "status")?, text(r, "updated_at")?],
                )?;
                changed += 1;
            }
        }
        "cards" => {
            let levels = load_levels(conn)?;
            for r in rows {
                if merge_card(conn, &CardSnapshot::from_json(r)?, &levels)? {
                    changed += 1;
                }
            }
        }
        "qr_states" => {
            for r in rows {
                let card_id = text(r, "card_id")?;
                let hash = text(r, "token_hash")?;
                let mut expires = unix(r, "expires_at")?.unwrap_or(0);
                // a token that already paid (at another edge, or at central) is over here
                // too: it ends when central marked it
                if r.get("used").and_then(Value::as_bool) == Some(true) {
                    expires = expires.min(unix(r, "updated_at")?.unwrap_or(0));
                }
                let fast = opt_text(r, "fast_verifier");
                let same: Option<i64> = conn
                    .query_row(
                        "SELECT 1 FROM card_qr_state WHERE card_id = ?1 AND token_hash = ?2 AND expires_at_unix = ?3
                             AND fast_verifier IS ?4",
                        params![card_id, hash, expires, fast],
                        |r| r.get(0),
                    )
                    .optional()?;
                if same.is_none() {
                    put_qr_state(
                        conn,
                        &card_id,
                        &hash,
                        expires,
                        &text(r, "updated_at")?,
                        fast.as_deref(),
                    )?;
                    changed += 1;
                }
            }
        }
        "qr_chains" => {
            for r in rows {
                let chain = pulled_chain(r)?;
                // Central bounds every chain; one outside them is not central's: skipped,
                // so it can never make a check walk further than central allows.
                if !crate::domain::mq2::chain_in_bounds(chain.slot_secs, chain.slots) {
                    tracing::warn!(card_id = %chain.card_id, chain_id = %chain.chain_id,
                        slot_secs = chain.slot_secs, slots = chain.slots,
                        "pulled an offline-code chain outside central's bounds; not stored");
                    continue;
                }
                if super::chains::put_pulled(conn, &chain)? {
                    changed += 1;
                }
            }
            super::chains::prune(conn, chrono::Utc::now().timestamp())?;
        }
        other => return Err(AppError::internal(format!("unknown pull kind {other}"))),
    }
    Ok(changed)
}

/// An offline-code chain as central's pull sends it (`mps_edge.qr_chains`).
fn pulled_chain(r: &Value) -> AppResult<super::chains::PulledChain> {
    use base64::Engine;
    let bad = |what: &str| AppError::internal(format!("bad {what} in a pulled chain: {r}"));
    let anchor = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text(r, "anchor")?)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| bad("anchor"))?;
    let small =
        |field: &str| -> AppResult<u32> { u32::try_from(int(r, field)?).map_err(|_| bad(field)) };
    Ok(super::chains::PulledChain {
        central_id: text(r, "id")?,
        card_id: text(r, "card_id")?,
        chain_id: text(r, "chain_id")?,
        anchor,
        epoch_unix: unix(r, "epoch")?.ok_or_else(|| bad("epoch"))?,
        slot_secs: small("slot_secs")?,
        slots: small("slots")?,
        ends_at_unix: unix(r, "ends_at")?.ok_or_else(|| bad("ends_at"))?,
        revoked_at_unix: unix(r, "revoked_at")?,
        used_through: small("used_through")?,
        updated_at: text(r, "updated_at")?,
    })
}

/// One operation's answer from central's `edge_apply_batch`.
#[derive(Debug, Clone)]
pub struct OpResult {
    pub op_id: String,
    pub status: String,
    pub reason: Option<String>,
    pub exception_id: Option<String>,
    pub card: Option<Value>,
}

impl OpResult {
    pub fn from_json(v: &Value) -> AppResult<OpResult> {
        Ok(OpResult {
            op_id: text(v, "op_id")?,
            status: text(v, "status")?,
            reason: opt_text(v, "reason"),
            exception_id: opt_text(v, "exception_id"),
            card: v.get("card").filter(|c| c.is_object()).cloned(),
        })
    }

    /// Applied (or an earlier application found again) vs. refused by central.
    pub fn rejected(&self) -> bool {
        self.status == "rejected" || (self.status == "duplicate" && self.reason.is_some())
    }
}

/// (state, op_type, tx_id, card_id, delta_cents) of an outbox entry.
type OutboxRow = (String, String, Option<String>, Option<String>, i64);

/// Records central's answers for pushed operations: marks them done, records
/// exceptions, merges the returned card states. Idempotent: an answer for an operation
/// already marked done changes nothing but the (never older) card state.
pub fn apply_push_results(conn: &Connection, results: &[OpResult]) -> AppResult<(usize, usize)> {
    let levels = load_levels(conn)?;
    let now = super::now_rfc3339();
    let (mut applied, mut rejected) = (0, 0);
    for r in results {
        let row: Option<OutboxRow> = conn
            .query_row(
                "SELECT state, op_type, tx_id, card_id, delta_cents FROM outbox WHERE op_id = ?1",
                [&r.op_id],
                |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?, x.get(4)?)),
            )
            .optional()?;
        let Some((state, op_type, tx_id, card_id, delta)) = row else {
            return Err(AppError::internal(format!(
                "central answered for unknown operation {}",
                r.op_id
            )));
        };
        if state == "pending" {
            let new_state = if r.rejected() { "rejected" } else { "applied" };
            conn.exec_cached(
                "UPDATE outbox SET state = ?2, done_at = ?3, last_error = ?4 WHERE op_id = ?1",
                params![r.op_id, new_state, now, r.reason],
            )?;
            if op_type == "charge" {
                meta::add(conn, meta::SITE_UNSYNCED_DEBIT, delta)?; // delta is negative
            }
            if let Some(tx) = &tx_id {
                conn.exec_cached(
                    "UPDATE transactions SET sync_state = ?2 WHERE id = ?1",
                    params![tx, if r.rejected() { "exception" } else { "applied" }],
                )?;
            }
            if r.rejected() {
                let tx_no: Option<String> = match &tx_id {
                    Some(t) => conn
                        .query_row("SELECT tx_no FROM transactions WHERE id = ?1", [t], |x| {
                            x.get(0)
                        })
                        .optional()?,
                    None => None,
                };
                // A settlement moves no balance (delta 0): its exception shows |total|.
                let amount = if op_type == "settlement" {
                    let total: Option<String> = conn.row_cached(
                        "SELECT CAST(json_extract(payload, '$.total_amount') AS TEXT) FROM outbox WHERE op_id = ?1",
                        [&r.op_id],
                        |x| x.get(0),
                    )?;
                    total
                        .as_deref()
                        .and_then(parse_decimal_cents)
                        .map_or(0, i64::abs)
                } else {
                    delta.abs()
                };
                conn.exec_cached(
                    "INSERT INTO sync_exceptions(id, op_id, op_type, tx_id, tx_no, card_id, amount_cents, reason,
                         central_exception_id, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(op_id) DO NOTHING",
                    params![
                        super::new_id(), r.op_id, op_type, tx_id, tx_no, card_id, amount,
                        r.reason.clone().unwrap_or_else(|| "REJECTED".into()), r.exception_id, now
                    ],
                )?;
                rejected += 1;
            } else {
                applied += 1;
            }
        }
        if let Some(card) = &r.card {
            merge_card(conn, &CardSnapshot::from_json(card)?, &levels)?;
        }
    }
    Ok((applied, rejected))
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
