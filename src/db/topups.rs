//! Counter top-ups: one writer job credits the card, writes the transaction, the outbox
//! operation, the idempotency record and the audit row, or nothing.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde_json::json;

use super::cards::load_card_by_no;
use super::ledger::{idem_lookup, idem_store, merchant_id, Idem};
use super::users::{audit, Actor};
use super::{meta, CachedExt};
use crate::domain::limits::TopupLimits;
use crate::domain::money::format_cents;
use crate::domain::topup::{plan_topup, TopupExposure};
use crate::domain::txno::{format_tx_no, TxKind};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::{TopupCard, TopupResponse, TopupTx};

pub struct TopupCmd {
    pub card_no: String,
    pub amount_cents: i64,
    pub payment_method: String,
    pub idem: Option<Idem>,
    pub tag: serde_json::Value,
    pub actor: Actor,
    pub site_code: String,
    pub limits: TopupLimits,
    /// When the store's business day began (RFC 3339, UTC): the per-shift limit counts
    /// from there, or from the person's open shift if it began earlier.
    pub day_start: String,
    pub now: DateTime<Utc>,
}

/// What this edge holds of top-ups central has not confirmed, and what the person took
/// in since the business day (or their shift, if it began earlier) began.
fn exposure(conn: &Connection, card_id: &str, cmd: &TopupCmd) -> AppResult<TopupExposure> {
    let unsynced = |card: Option<&str>| -> AppResult<i64> {
        Ok(conn.row_cached(
            "SELECT COALESCE(SUM(delta_cents), 0) FROM outbox
              WHERE op_type = 'recharge' AND state = 'pending' AND (?1 IS NULL OR card_id = ?1)",
            params![card],
            |r| r.get(0),
        )?)
    };
    let shift_cents = match &cmd.actor.user_id {
        Some(user_id) => {
            // The business day, or the open shift when it began earlier (a shift across
            // midnight). Never a later start: closing a shift and opening another must
            // not lift the limit.
            let since = match super::shifts::open_shift_of(conn, user_id)? {
                Some(s) if s.opened_at < cmd.day_start => s.opened_at,
                _ => cmd.day_start.clone(),
            };
            conn.row_cached(
                "SELECT COALESCE(SUM(final_amount_cents), 0) FROM transactions
                  WHERE operator_user_id = ?1 AND created_at >= ?2 AND tx_type = 'recharge'",
                params![user_id, since],
                |r| r.get(0),
            )?
        }
        None => 0,
    };
    Ok(TopupExposure {
        card_unsynced_cents: unsynced(Some(card_id))?,
        shift_cents,
        site_unsynced_cents: unsynced(None)?,
    })
}

/// Returns the response JSON and whether it replays an earlier request.
pub fn commit_topup(conn: &Connection, cmd: TopupCmd) -> AppResult<(String, bool)> {
    if let Some(idem) = &cmd.idem {
        if let Some(stored) = idem_lookup(conn, idem, "topup")? {
            return Ok((stored, true));
        }
    }
    let merchant_id = merchant_id(conn)?;
    let card = load_card_by_no(conn, &cmd.card_no)?
        .ok_or_else(|| AppError::new(ErrorCode::CardNotFound))?;
    let now_unix = cmd.now.timestamp();
    let plan = plan_topup(
        &card.state,
        cmd.amount_cents,
        &cmd.limits,
        exposure(conn, &card.id, &cmd)?,
        now_unix,
    )?;
    let tx_id = super::new_id();
    let tx_no = format_tx_no(
        TxKind::Recharge,
        &cmd.site_code,
        meta::next(conn, meta::TX_SEQ)?,
    );
    let created_at = cmd.now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let points_after = card.state.points;
    // As central writes a recharge: raw = final, discount 1, no points, reason 'recharge'.
    conn.exec_cached(
        "INSERT INTO transactions(id, tx_no, tx_type, card_id, merchant_id, raw_amount_cents, discount_milli,
            final_amount_cents, points_earned, status, reason, payment_method, tag, operator_user_id,
            operator_username, device_id, created_at, created_unix, balance_after_cents, points_after)
         VALUES (?1, ?2, 'recharge', ?3, ?4, ?5, 1000, ?5, 0, 'completed', 'recharge', ?6, ?7, ?8, ?9, ?10,
                 ?11, ?12, ?13, ?14)",
        params![
            tx_id, tx_no, card.id, merchant_id, plan.amount_cents, cmd.payment_method, cmd.tag.to_string(),
            cmd.actor.user_id, cmd.actor.username, cmd.actor.device_id, created_at, now_unix,
            plan.available_after_cents, points_after
        ],
    )?;
    conn.exec_cached(
        "UPDATE cards SET pending_credit_cents = pending_credit_cents + ?2 WHERE id = ?1",
        params![card.id, plan.amount_cents],
    )?;
    let op_id = super::new_id();
    let payload = json!({
        "op_id": op_id,
        "op_type": "recharge",
        "tx_id": tx_id,
        "tx_no": tx_no,
        "card_id": card.id,
        "raw_amount": format_cents(plan.amount_cents),
        "discount": "1.000",
        "final_amount": format_cents(plan.amount_cents),
        "points_earned": 0,
        "payment_method": cmd.payment_method,
        "created_at": created_at,
        "terminal": cmd.actor.device_id,
        "operator": cmd.actor.username,
        "approved_by": cmd.actor.approved_by,
        "external_order_id": null,
        "tag": cmd.tag,
    });
    conn.exec_cached(
        "INSERT INTO outbox(op_id, op_type, tx_id, card_id, delta_cents, points, payload, created_at, created_unix)
         VALUES (?1, 'recharge', ?2, ?3, ?4, 0, ?5, ?6, ?7)",
        params![op_id, tx_id, card.id, plan.amount_cents, payload.to_string(), created_at, now_unix],
    )?;
    audit(
        conn,
        &cmd.actor,
        "topup",
        Some(("transaction", &tx_no)),
        json!({"amount": format_cents(plan.amount_cents), "card_no": card.card_no,
               "payment_method": cmd.payment_method}),
    )?;
    let response = TopupResponse {
        topup: TopupTx {
            tx_id: tx_id.clone(),
            receipt_url: crate::model::receipt_url(&tx_no),
            tx_no,
            card_id: card.id.clone(),
            amount: plan.amount_cents,
            payment_method: cmd.payment_method.clone(),
            status: "completed".into(),
            created_at: created_at.clone(),
            sync_state: "pending".into(),
            approved_by: cmd.actor.approved_by.clone(),
        },
        card: TopupCard {
            card_no: card.card_no,
            balance_after: plan.available_after_cents,
            points: points_after,
        },
    };
    let body = serde_json::to_string(&response).map_err(|e| AppError::internal(e.to_string()))?;
    if let Some(idem) = &cmd.idem {
        idem_store(conn, idem, "topup", &tx_id, &body, &created_at)?;
    }
    Ok((body, false))
}
