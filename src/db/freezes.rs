//! Freezing a lost card at the counter, and lifting that freeze (issue 14, item 5). The
//! card's status changes here at once (charges are refused from the next request on),
//! and a 'card_freeze' / 'card_unfreeze' outbox operation carries it to central in the
//! same transaction. The operation names the card, so it keeps its place among the
//! card's charges and refunds; until central reflects it, `replica::merge_card` keeps
//! the local status over a pulled one.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

use super::cards::{load_card_by_no, load_levels, CardRow};
use super::users::{audit, Actor};
use super::CachedExt;
use crate::domain::freeze::{check_freeze, check_unfreeze, CARD_STATUS_FROZEN};
use crate::domain::levels::standing;
use crate::domain::CARD_STATUS_ACTIVE;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::{CardFreeze, CardView};

pub struct FreezeCmd {
    pub card_no: String,
    /// true: freeze; false: lift this edge's freeze.
    pub freeze: bool,
    pub reason: String,
    pub actor: Actor,
}

/// This edge's freeze of the card, if any.
fn freeze_of(conn: &Connection, card_id: &str) -> AppResult<Option<CardFreeze>> {
    Ok(conn
        .query_row(
            "SELECT frozen_at, frozen_by, reason FROM card_freezes WHERE card_id = ?1",
            [card_id],
            |r| {
                Ok(CardFreeze {
                    frozen_at: r.get(0)?,
                    frozen_by: r.get(1)?,
                    reason: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Unsynced operations on the card (its charges, refunds, freezes).
fn pending_ops(conn: &Connection, card_id: &str) -> AppResult<i64> {
    Ok(conn.row_cached(
        "SELECT COUNT(*) FROM outbox WHERE card_id = ?1 AND state = 'pending'",
        [card_id],
        |r| r.get(0),
    )?)
}

fn view(conn: &Connection, card: CardRow) -> AppResult<CardView> {
    let levels = load_levels(conn)?;
    let level = standing(
        &levels,
        card.level.unwrap_or(0),
        card.state.level_discount,
        card.state.points,
    );
    Ok(CardView {
        freeze: freeze_of(conn, &card.id)?.filter(|_| card.state.status == CARD_STATUS_FROZEN),
        pending_ops: pending_ops(conn, &card.id)?,
        balance: card.state.available_cents(),
        points: card.state.points,
        status: card.state.status,
        card_type: card.card_type.as_str().into(),
        card_no: card.card_no,
        level: level.into(),
    })
}

/// A card as the counter sees it, by its number.
pub fn card_view(conn: &Connection, card_no: &str) -> AppResult<Option<CardView>> {
    match load_card_by_no(conn, card_no)? {
        Some(card) => view(conn, card).map(Some),
        None => Ok(None),
    }
}

/// Freezes or unfreezes in the caller's (writer) transaction: the status, this edge's
/// freeze record, the outbox operation and the audit row together, or nothing.
pub fn set_frozen(conn: &Connection, cmd: &FreezeCmd) -> AppResult<CardView> {
    let card = load_card_by_no(conn, &cmd.card_no)?
        .ok_or_else(|| AppError::new(ErrorCode::CardNotFound))?;
    let status_before = card.state.status.clone();
    let (op_type, status_after, action) = if cmd.freeze {
        check_freeze(&status_before)?;
        ("card_freeze", CARD_STATUS_FROZEN, "card.freeze")
    } else {
        check_unfreeze(&status_before, freeze_of(conn, &card.id)?.is_some())?;
        ("card_unfreeze", CARD_STATUS_ACTIVE, "card.unfreeze")
    };
    let now = super::now_rfc3339();
    let op_id = super::new_id();
    let operator = cmd.actor.username.clone().unwrap_or_default();
    conn.exec_cached(
        "UPDATE cards SET status = ?2 WHERE id = ?1",
        params![card.id, status_after],
    )?;
    if cmd.freeze {
        conn.exec_cached(
            "INSERT INTO card_freezes(card_id, op_id, frozen_at, frozen_by, reason) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(card_id) DO UPDATE SET op_id = excluded.op_id, frozen_at = excluded.frozen_at,
                 frozen_by = excluded.frozen_by, reason = excluded.reason",
            params![card.id, op_id, now, operator, cmd.reason],
        )?;
    } else {
        conn.exec_cached("DELETE FROM card_freezes WHERE card_id = ?1", [&card.id])?;
    }
    let payload = json!({
        "op_id": op_id,
        "op_type": op_type,
        "card_id": card.id,
        "card_no": card.card_no,
        "reason": cmd.reason,
        "operator": operator,
        "at": now,
    });
    conn.exec_cached(
        "INSERT INTO outbox(op_id, op_type, card_id, payload, created_at, created_unix) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![op_id, op_type, card.id, payload.to_string(), now, super::now_unix()],
    )?;
    audit(
        conn,
        &cmd.actor,
        action,
        Some(("card", &card.card_no)),
        json!({"reason": cmd.reason, "status": {"old": status_before, "new": status_after}}),
    )?;
    let card = load_card_by_no(conn, &cmd.card_no)?
        .ok_or_else(|| AppError::internal("the card vanished in its own transaction"))?;
    view(conn, card)
}
